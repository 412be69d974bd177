//! `k8rs image import|ls` against a real containerd, laid out as the agent lays out its
//! own under `--data-dir` (`agent/containerd/containerd.sock`). Needs root and
//! containerd (scripts/deps.sh); fails (never skips) without them.

use std::path::Path;
use std::process::{Command, Output};

use cri::containerd::{Config, Containerd};
use cri::images::{Entry, OciImage, write_archive};

fn k8rs(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .arg("image")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run k8rs")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test]
async fn import_and_list_an_archive_of_our_own() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // Before containerd runs: the socket is named, with the likely cause.
    let out = k8rs(&data, &["ls"]);
    assert!(!out.status.success());
    let socket = data.join("agent/containerd/containerd.sock");
    assert!(
        text(&out.stderr).contains(&format!(
            "containerd socket {} not found: is `k8rs server` running",
            socket.display()
        )),
        "{}",
        text(&out.stderr)
    );

    let cni = dir.path().join("cni");
    std::fs::create_dir_all(&cni).unwrap();
    let containerd = Containerd::start(Config::new(data.join("agent/containerd"), &cni))
        .await
        .unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
    assert_eq!(containerd.socket(), socket);

    let archive = dir.path().join("hello.tar");
    let image = OciImage {
        name: "example.com/k8rs-test/hello:1".into(),
        entries: vec![Entry::bytes("/hello.txt", "hello\n", 0o644)],
        cmd: vec!["/hello".into()],
        ..Default::default()
    };
    let built = write_archive(&[image], &archive).unwrap();

    let missing = dir.path().join("missing.tar");
    let out = k8rs(&data, &["import", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot import {}: no such file",
            missing.display()
        )),
        "{}",
        text(&out.stderr)
    );

    let out = k8rs(&data, &["import", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("example.com/k8rs-test/hello:1"),
        "{}",
        text(&out.stdout)
    );

    // CRI's image list follows containerd's events: poll until the name shows.
    let id = &built[0].config_digest["sha256:".len()..][..13];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listing = loop {
        let out = k8rs(&data, &["ls"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let listing = text(&out.stdout);
        if listing.contains("example.com/k8rs-test/hello:1") {
            break listing;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not listed: {listing}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut lines = listing.lines();
    let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).collect();
    assert_eq!(
        header
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>(),
        ["IMAGE", "IMAGE ID", "SIZE"]
    );
    let row = lines
        .find(|l| l.starts_with("example.com/k8rs-test/hello:1 "))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..2], ["example.com/k8rs-test/hello:1", id], "{row}");
    assert!(cells[2].ends_with('B'), "size in {row}");

    containerd
        .stop(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}
