//! `k8rs agent --server --token` joins a control-plane-only server as a second
//! process: its Node goes Ready, a pod runs on it in real containers, and the API
//! server reaches its kubelet (certificates issued at join) for `kubectl logs`.
//! Needs root and scripts/deps.sh's packages; fails (never skips) without them.

#[allow(dead_code)]
#[path = "support/real_node.rs"]
mod real_node;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::agent::{Agent, server_url};
use support::{Opts, Server, wait_for};

const NODE: &str = "k8rs-joined";
const BRIDGE: &str = "k8rs-jn0";

#[test]
fn an_agent_joins_with_the_token_and_runs_pods() {
    let server = Server::start_with(Opts {
        args: [
            "--cluster-cidr=10.204.0.0/16",
            "--service-cidr=10.205.0.0/16",
            "--cluster-dns=10.205.0.10",
        ]
        .map(String::from)
        .to_vec(),
    });
    let dir = tempfile::tempdir().unwrap();

    // A token for another CA is refused before anything is trusted.
    let wrong = format!("K10{}::server:nope", "0".repeat(64));
    let out = Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .args(["agent", "--server", &server_url(&server), "--token", &wrong])
        .args(["--data-dir", dir.path().join("refused").to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--token is not this server's"), "{stderr}");

    let agent = Agent::start(&server, &dir.path().join("agent"), NODE, BRIDGE, &[]);
    let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
    let jsonpath = |args: &[&str], path: &str| {
        let out = server.kubectl(&[args, &["-o", &format!("jsonpath={path}")]].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the joined node Ready", Duration::from_secs(90), || {
            (jsonpath(&["get", "node", NODE], ready) == "True").then_some(())
        })
    }));
    if joined.is_err() {
        panic!("agent log:\n{}", agent.log());
    }
    // Not a control-plane node; the node's user is its own.
    let roles = server.kubectl_ok(&["get", "node", NODE, "--show-labels"]);
    assert!(
        !roles.contains("node-role.kubernetes.io/control-plane"),
        "{roles}"
    );

    server.kubectl_ok(&[
        "run",
        "hello",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo hello from the joined node",
    ]);
    let phase = wait_for("pod hello Succeeded", Duration::from_secs(90), || {
        let p = jsonpath(&["get", "pod", "hello"], "{.status.phase}");
        matches!(p.as_str(), "Succeeded" | "Failed").then_some(p)
    });
    assert_eq!(phase, "Succeeded", "agent log:\n{}", agent.log());
    assert_eq!(jsonpath(&["get", "pod", "hello"], "{.spec.nodeName}"), NODE);
    assert_eq!(
        server.kubectl_ok(&["logs", "hello"]),
        "hello from the joined node\n"
    );
}
