//! Durability of the SQLite store under `kill -9`: a child process runs many concurrent
//! writers and reports every acknowledged write; it is killed mid-stream, the store is
//! reopened, and every acknowledged write must be there, whole, with nothing
//! half-written visible.
//!
//! The child is this same test binary, re-run with an environment variable set.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use store::sqlite::SqliteStore;
use store::{ListOptions, Store};

const CHILD_ENV: &str = "K8RS_DURABILITY_CHILD_DB";
const WRITERS: usize = 16;

/// A value whose integrity can be checked: the key, a length and a body of that length.
fn value_for(key: &str, round: usize) -> String {
    let body = "x".repeat(100 + (round * 37) % 4000);
    format!("{key}|{round}|{}|{body}", body.len())
}

fn check_value(key: &str, value: &str) -> usize {
    let parts: Vec<&str> = value.splitn(4, '|').collect();
    assert_eq!(parts.len(), 4, "malformed value under {key}");
    assert_eq!(parts[0], key, "value of another key under {key}");
    let len: usize = parts[2].parse().unwrap();
    assert_eq!(parts[3].len(), len, "truncated value under {key}");
    parts[1].parse().unwrap()
}

/// The child: writes forever, printing `key round` after each acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful when started by the parent test below.
    };
    let s = Arc::new(SqliteStore::open(&path).unwrap());
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/registry/durable/w{w}");
            let mut kv = s.create(&key, value_for(&key, 0).into()).await.unwrap();
            println!("{key} 0");
            for round in 1.. {
                kv = s
                    .update(&key, value_for(&key, round).into(), kv.mod_revision)
                    .await
                    .unwrap();
                println!("{key} {round}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read acknowledgements until enough have streamed by, then kill without warning.
    let (acked, killed) = tokio::task::spawn_blocking(move || {
        let mut acked = std::collections::HashMap::<String, usize>::new();
        let mut count = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some((key, round)) = line.split_once(' ') else {
                continue; // The test harness's own output.
            };
            let Ok(round) = round.parse::<usize>() else {
                continue;
            };
            acked.insert(key.to_string(), round);
            count += 1;
            if count == 2000 || Instant::now() > deadline {
                child.kill().unwrap();
                break;
            }
        }
        child.wait().unwrap();
        (acked, count)
    })
    .await
    .unwrap();
    assert!(
        killed >= 2000,
        "the child acknowledged only {killed} writes"
    );

    let s = SqliteStore::open(&db).unwrap();
    for (key, round) in &acked {
        let kv = s
            .get(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} lost"));
        let stored = check_value(key, std::str::from_utf8(&kv.value).unwrap());
        // Writes after the last one read may have been acknowledged too late to print.
        assert!(
            stored >= *round,
            "{key}: acknowledged round {round}, found {stored}"
        );
    }
    let all = s
        .list("/registry/durable/", ListOptions::default())
        .await
        .unwrap();
    for kv in &all.items {
        check_value(&kv.key, std::str::from_utf8(&kv.value).unwrap());
    }
    assert_eq!(all.items.len(), acked.len());
    // The store goes on from where it was.
    let next = s
        .create("/registry/durable/after", "x".into())
        .await
        .unwrap();
    assert!(next.mod_revision > all.revision);
}
