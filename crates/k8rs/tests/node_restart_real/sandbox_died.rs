//! A pod whose sandbox and container die while the agent is down (their processes
//! killed through runc, as a crash or the OOM killer would) is re-created by the
//! restarted agent as upstream's kubelet does: a new sandbox, a new container, and the
//! restartCount carried on from the dead one, which becomes the lastState; and so
//! again when the sandbox dies under the running agent, and when only its pause
//! process dies (the app is stopped first).
//! Also: the agent's SIGTERM stops its containerd gracefully.

use std::process::Command;
use std::time::{Duration, Instant};

use cri::RuntimeService;

use super::support::agent::Agent;
use super::support::at_address::containerd_pid;
use super::{running_container, server, wait_node_ready, wait_pod};

fn containerd_config(agent: &Agent) -> cri::containerd::Config {
    let dir = agent.data.join("agent");
    cri::containerd::Config::new(dir.join("containerd"), dir.join("etc/cni/net.d"))
}

/// After the agent exited on SIGTERM: its containerd exited too, on SIGTERM alone.
pub fn assert_containerd_stopped(agent: &Agent) {
    assert_eq!(containerd_pid(&containerd_config(agent)), None);
    let log = agent.log();
    let stopped = log.lines().rfind(|l| l.contains("containerd stopped"));
    let stopped = stopped.unwrap_or_else(|| panic!("{log}"));
    eprintln!("{}", stopped.trim());
    assert!(!log.contains("containerd ignored SIGTERM"), "{log}");
}

/// The sandbox of the container `id` (without `containerd://`).
fn sandbox_of(agent: &Agent, id: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = cri::CriClient::connect(containerd_config(agent).socket())
            .await
            .unwrap();
        let listed = client.list_containers(None).await.unwrap();
        let c = listed.into_iter().find(|c| c.id == id).expect("container");
        c.pod_sandbox_id
    })
}

/// SIGKILLs a runc container of the agent (its shim lives on and reaps it) and waits
/// until runc reports it stopped (or gone: a running containerd deletes it).
fn kill_runc(agent: &Agent, id: &str) {
    let root = containerd_config(agent).state_dir.join("state/runc/k8s.io");
    let runc = |args: &[&str]| {
        Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .expect("runc")
    };
    let out = runc(&["kill", id, "KILL"]);
    assert!(out.status.success(), "{out:?}");
    super::support::wait_for(&format!("{id} stopped"), Duration::from_secs(30), || {
        let out = runc(&["state", id]);
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (!out.status.success() || state["status"] == "stopped").then_some(())
    });
}

/// The messages of the phoenix pod's events with `reason`.
fn event_messages(server: &super::support::Server, reason: &str) -> String {
    server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("reason={reason},involvedObject.name=phoenix"),
        "-o",
        "jsonpath={.items[*].message}",
    ])
}

#[test]
fn a_sandbox_that_died_while_the_agent_was_down_restarts_counting_on() {
    const NODE: &str = "k8st-phoenix";
    let server = server("10.214.0.0/17", "10.215.0.0/17", "10.215.0.10");
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(&server, &dir.path().join("agent"), NODE, "k8st2", &[]);
    wait_node_ready(&server, &agent);
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: phoenix}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: busybox, command: [sh, -c, 'echo run; exec sleep 3600']}]
"#,
    );
    let first = wait_pod(&server, &agent, "phoenix", "Running", |p| {
        running_container(p?)
    });
    let id = first.trim_start_matches("containerd://").to_string();
    let sandbox = sandbox_of(&agent, &id);

    agent.stop("TERM");
    assert_containerd_stopped(&agent);
    kill_runc(&agent, &sandbox);
    kill_runc(&agent, &id);
    let restarted = Instant::now();
    agent.restart();
    let p = wait_pod(
        &server,
        &agent,
        "phoenix",
        "Running in a new container",
        |p| {
            let p = p?;
            (running_container(p)? != first).then(|| p.clone())
        },
    );
    eprintln!(
        "restarted agent re-created a dead sandbox after {:?}",
        restarted.elapsed()
    );
    let c = &p["status"]["containerStatuses"][0];
    assert_eq!(c["restartCount"], 1, "{p:#}");
    let last = &c["lastState"]["terminated"];
    assert_eq!(last["containerID"], first.as_str(), "{p:#}");
    assert_eq!(last["exitCode"], 137, "{p:#}");
    assert_eq!(server.kubectl_ok(&["logs", "phoenix"]), "run\n");
    assert_eq!(
        server.kubectl_ok(&["logs", "phoenix", "--previous"]),
        "run\n"
    );
    assert_eq!(
        event_messages(&server, "SandboxChanged"),
        "Pod sandbox changed, it will be killed and re-created."
    );
    assert!(agent.log().contains("re-creating it"));

    // A second restart adopts the new sandbox and reports the dead one's container as
    // the lastState again (wiped from the API while the agent is down, so only the
    // runtime can tell), with its log for --previous.
    agent.stop("TERM");
    server.kubectl_ok(&[
        "patch",
        "pod",
        "phoenix",
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/status/containerStatuses/0/lastState/terminated"}]"#,
    ]);
    agent.restart();
    let p = wait_pod(
        &server,
        &agent,
        "phoenix",
        "lastState after a second restart",
        |p| {
            let p = p?;
            let c = &p["status"]["containerStatuses"][0];
            (c["lastState"]["terminated"]["containerID"] == first.as_str()).then(|| p.clone())
        },
    );
    assert_eq!(
        p["status"]["containerStatuses"][0]["restartCount"], 1,
        "{p:#}"
    );
    assert_eq!(
        server.kubectl_ok(&["logs", "phoenix", "--previous"]),
        "run\n"
    );

    // Again with the agent running: the sandbox dies first (so the container cannot
    // just be restarted in it), then the container; the kubelet sees the container
    // exit, finds its sandbox dead, and re-creates both.
    let second = running_container(&p).unwrap();
    let id = second.trim_start_matches("containerd://").to_string();
    let sandbox = sandbox_of(&agent, &id);
    let killed = Instant::now();
    kill_runc(&agent, &sandbox);
    kill_runc(&agent, &id);
    let p = wait_pod(&server, &agent, "phoenix", "Running again", |p| {
        let p = p?;
        let c = running_container(p)?;
        (c != first && c != second).then(|| p.clone())
    });
    eprintln!(
        "a sandbox killed under the agent re-created after {:?}",
        killed.elapsed()
    );
    let c = &p["status"]["containerStatuses"][0];
    assert_eq!(c["restartCount"], 2, "{p:#}");
    assert_eq!(
        c["lastState"]["terminated"]["containerID"],
        second.as_str(),
        "{p:#}"
    );
    // Re-created, not restarted in the dead sandbox (where it could not run).
    assert_eq!(agent.log().matches("re-creating it").count(), 2);

    // Only the pause process dies, the app lives on: the kubelet notices the sandbox
    // (no container exited to tell it), stops the app (a Killing event; sleep is its
    // container's PID 1 and ignores SIGTERM, so SIGKILL after the 1 s grace) and
    // re-creates both.
    let third = running_container(&p).unwrap();
    let id = third.trim_start_matches("containerd://").to_string();
    let killed = Instant::now();
    kill_runc(&agent, &sandbox_of(&agent, &id));
    let p = wait_pod(
        &server,
        &agent,
        "phoenix",
        "Running after pause died",
        |p| {
            let p = p?;
            let c = running_container(p)?;
            (c != third && c != second && c != first).then(|| p.clone())
        },
    );
    eprintln!(
        "a pod whose pause process died re-created after {:?}",
        killed.elapsed()
    );
    let c = &p["status"]["containerStatuses"][0];
    assert_eq!(c["restartCount"], 3, "{p:#}");
    let last = &c["lastState"]["terminated"];
    assert_eq!(last["containerID"], third.as_str(), "{p:#}");
    assert_eq!(last["exitCode"], 137, "{p:#}");
    assert!(agent.log().contains("stopping its containers"));
    assert_eq!(
        event_messages(&server, "Killing"),
        "Stopping container main"
    );
    assert_eq!(agent.log().matches("re-creating it").count(), 3);
}
