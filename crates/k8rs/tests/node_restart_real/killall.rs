//! `k8rs killall` after an agent was SIGKILLed with a pod running: it refuses while a
//! node runs on the data dir, then leaves nothing behind (containerd, shims, mounts,
//! the pod's address in host-local IPAM, the bridge, the proxy's tables), and a second
//! run finds nothing to do.

use std::path::Path;
use std::process::{Command, Output};

use super::support::agent::Agent;
use super::support::at_address::containerd_pid;
use super::{running_container, server, wait_node_ready, wait_pod};

const BRIDGE: &str = "k8st3";
const TABLE: &str = "k8st3p";

fn killall(data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .arg("killall")
        .args(["--data-dir", data.to_str().unwrap()])
        .args(["--cni-bridge", BRIDGE, "--kube-proxy-table", TABLE])
        .output()
        .expect("run k8rs killall")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `containerd-shim*` processes serving the agent's containerd socket.
fn shims(socket: &Path) -> usize {
    let want = format!("-address\0{}\0", socket.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains("containerd-shim") && cmd.contains(&want)
        })
        .count()
}

fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables", "ip"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn killall_removes_what_a_killed_agent_left() {
    const NODE: &str = "k8st-leftovers";
    let server = server("10.216.0.0/17", "10.217.0.0/17", "10.217.0.10");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let mut agent = Agent::start(&server, &data, NODE, BRIDGE, &[]);
    wait_node_ready(&server, &agent);
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: leftover}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"], volumeMounts: [{name: mem, mountPath: /mem}]}
  volumes: [{name: mem, emptyDir: {medium: Memory}}]
"#,
    );
    wait_pod(&server, &agent, "leftover", "Running", |p| {
        running_container(p?)
    });
    let pod_ip = server.jsonpath(&["get", "pod", "leftover"], "{.status.podIP}");

    let refused = killall(&data);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("is still running"),
        "{}",
        text(&refused)
    );

    agent.stop("KILL");
    let config = cri::containerd::Config::new(
        data.join("agent/containerd"),
        data.join("agent/etc/cni/net.d"),
    );
    let ipam = data.join("agent/cni/networks/k8rs").join(&pod_ip);
    assert!(
        containerd_pid(&config).is_some(),
        "containerd outlives a killed agent"
    );
    assert!(shims(&config.socket()) > 0);
    assert!(!cri::mounts::mount_points_under(&data).unwrap().is_empty());
    assert!(ipam.exists(), "{} allocated", ipam.display());
    for t in [TABLE.to_string(), format!("{TABLE}-svc-3")] {
        let out = Command::new("nft")
            .args(["add", "table", "ip", &t])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    let out = killall(&data);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("{}", text(&out));
    assert!(text(&out).contains("pods removed: 1"), "{}", text(&out));
    assert_eq!(containerd_pid(&config), None);
    assert_eq!(shims(&config.socket()), 0);
    assert_eq!(
        cri::mounts::mount_points_under(&data).unwrap(),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!ipam.exists(), "CNI DEL released {pod_ip}");
    assert!(!Path::new("/sys/class/net").join(BRIDGE).exists());
    assert!(!nft_tables().contains(TABLE), "{}", nft_tables());
    // The data stays: only k8rs-uninstall.sh removes it.
    assert!(data.join("agent/containerd").exists());

    let again = killall(&data);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("pods removed: 0"), "{}", text(&again));
}
