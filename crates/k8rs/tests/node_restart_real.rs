//! Static pods and agent restarts, on a `k8rs agent` joined to a control-plane-only
//! server, with real containers:
//! - a manifest in the agent's manifest directory runs as a static pod, shown in the
//!   API as a mirror pod (upstream's annotations, the Node as owner); deleting the
//!   mirror brings it back over the same container; editing the file restarts the pod
//!   with the new spec; removing it stops the container and deletes the mirror;
//! - an agent killed (SIGKILL, then SIGTERM) and started again on the same data dir
//!   keeps its pods running: same container IDs, restartCount 0, same pod IP, still
//!   serving; pods deleted while it was down have their containers removed;
//! - a pod whose sandbox died while the agent was down restarts with its count carried
//!   on (`sandbox_died.rs`);
//! - `k8rs killall` after a killed agent leaves nothing behind (`killall.rs`).
//!
//! Needs root and scripts/deps.sh's packages; fails (never skips) without them.

#[path = "node_restart_real/killall.rs"]
mod killall;
#[path = "node_restart_real/sandbox_died.rs"]
mod sandbox_died;
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cri::RuntimeService;
use serde_json::Value;
use support::agent::Agent;
use support::{Opts, Server, http_get, wait_for};

fn server(cluster_cidr: &str, service_cidr: &str, dns: &str) -> Server {
    Server::start_with(Opts {
        args: vec![
            format!("--cluster-cidr={cluster_cidr}"),
            format!("--service-cidr={service_cidr}"),
            format!("--cluster-dns={dns}"),
        ],
    })
}

/// Waits until the agent's node is Ready; on timeout, panics with the agent's log.
fn wait_node_ready(server: &Server, agent: &Agent) {
    let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the agent's node Ready", Duration::from_secs(90), || {
            let out = server.kubectl(&[
                "get",
                "node",
                &agent.node,
                "-o",
                &format!("jsonpath={ready}"),
            ]);
            (out.stdout == b"True").then_some(())
        })
    }));
    if joined.is_err() {
        panic!("agent log:\n{}", tail(&agent.log(), 60));
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The pod as JSON, or `None` when the API does not have it.
fn pod(server: &Server, name: &str) -> Option<Value> {
    let out = server.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("pod JSON"))
}

/// The pod's first container's ID once the pod is Running with it running.
fn running_container(p: &Value) -> Option<String> {
    let s = &p["status"];
    let c = &s["containerStatuses"][0];
    (s["phase"] == "Running" && c["state"].get("running").is_some())
        .then(|| c["containerID"].as_str().map(str::to_string))
        .flatten()
}

/// Waits until `check` passes on the pod; on timeout, panics with the pod and the
/// agent's log.
fn wait_pod<T>(
    server: &Server,
    agent: &Agent,
    name: &str,
    what: &str,
    mut check: impl FnMut(Option<&Value>) -> Option<T>,
) -> T {
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            &format!("pod {name}: {what}"),
            Duration::from_secs(90),
            || check(pod(server, name).as_ref()),
        )
    }));
    match found {
        Ok(v) => v,
        Err(_) => panic!(
            "pod {name}: {what}: timed out\n{}\nagent log:\n{}",
            pod(server, name).map_or("(no pod)".into(), |p| format!("{p:#}")),
            tail(&agent.log(), 60)
        ),
    }
}

/// The agent's containers as its containerd lists them: (id, running).
fn cri_containers(agent: &Agent) -> Vec<(String, bool)> {
    let dir = agent.data.join("agent");
    let config = cri::containerd::Config::new(dir.join("containerd"), dir.join("etc/cni/net.d"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listed = rt.block_on(async {
        let client = cri::CriClient::connect(config.socket()).await.ok()?;
        client.list_containers(None).await.ok()
    });
    let running = cri::v1::ContainerState::ContainerRunning as i32;
    listed
        .unwrap_or_default()
        .into_iter()
        .map(|c| (format!("containerd://{}", c.id), c.state == running))
        .collect()
}

fn annotation<'a>(p: &'a Value, key: &str) -> &'a str {
    p["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_default()
}

fn static_manifest(name: &str, message: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'echo {message}; exec sleep 3600']
"
    )
}

#[test]
fn a_static_pod_runs_from_its_manifest_with_a_mirror_pod() {
    const NODE: &str = "k8st-static";
    let server = server("10.208.0.0/17", "10.209.0.0/17", "10.209.0.10");
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&server, &dir.path().join("agent"), NODE, "k8st0", &[]);
    wait_node_ready(&server, &agent);
    let node_uid = server.kubectl_ok(&["get", "node", NODE, "-o", "jsonpath={.metadata.uid}"]);

    // k3s' default place, created by the agent.
    let manifests: PathBuf = agent.data.join("agent/pod-manifests");
    assert!(manifests.is_dir(), "{} missing", manifests.display());
    let file = manifests.join("web.yaml");
    std::fs::write(&file, static_manifest("web", "v1")).unwrap();
    let mirror = format!("web-{NODE}");
    let started = Instant::now();
    let (first, p) = wait_pod(&server, &agent, &mirror, "mirror Running", |p| {
        let p = p?;
        Some((running_container(p)?, p.clone()))
    });
    eprintln!(
        "static pod Running in the API after {:?}",
        started.elapsed()
    );
    let hash = annotation(&p, "kubernetes.io/config.hash");
    assert_eq!(hash.len(), 32, "{p:#}");
    assert_eq!(annotation(&p, "kubernetes.io/config.mirror"), hash);
    assert_eq!(annotation(&p, "kubernetes.io/config.source"), "file");
    assert!(!annotation(&p, "kubernetes.io/config.seen").is_empty());
    assert_ne!(
        p["metadata"]["uid"], hash,
        "the mirror has a UID of its own"
    );
    let owner = &p["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], NODE);
    assert_eq!(owner["uid"], node_uid.as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(p["spec"]["nodeName"], NODE);
    // No service account token for a mirror pod (upstream's admission).
    assert!(p["spec"]["volumes"].is_null(), "{p:#}");
    assert_eq!(server.kubectl_ok(&["logs", &mirror]), "v1\n");

    // Deleting the mirror: a new mirror, the same container.
    let old_uid = p["metadata"]["uid"].clone();
    let deleted = Instant::now();
    server.kubectl_ok(&["delete", "pod", &mirror, "--timeout=60s"]);
    wait_pod(
        &server,
        &agent,
        &mirror,
        "a new mirror, same container",
        |p| {
            let p = p?;
            (p["metadata"]["uid"] != old_uid && running_container(p)? == first).then_some(())
        },
    );
    eprintln!(
        "mirror deleted and back, Running, after {:?}",
        deleted.elapsed()
    );

    // Editing the file: the pod restarts with the new spec.
    std::fs::write(&file, static_manifest("web", "v2")).unwrap();
    let second = wait_pod(&server, &agent, &mirror, "restarted with v2", |p| {
        let p = p?;
        let c = running_container(p)?;
        (c != first && annotation(p, "kubernetes.io/config.mirror") != hash).then_some(c)
    });
    assert_eq!(server.kubectl_ok(&["logs", &mirror]), "v2\n");
    let ids: Vec<String> = cri_containers(&agent).into_iter().map(|c| c.0).collect();
    assert!(
        !ids.contains(&first),
        "the old container is removed: {ids:?}"
    );

    // Removing the file: the mirror goes, and the container with it.
    std::fs::remove_file(&file).unwrap();
    wait_pod(&server, &agent, &mirror, "mirror deleted", |p| {
        p.is_none().then_some(())
    });
    wait_for("the container removed", Duration::from_secs(30), || {
        let ids = cri_containers(&agent);
        (!ids.iter().any(|c| c.0 == second)).then_some(())
    });
}

/// What must not change across an agent restart.
#[derive(Debug, PartialEq)]
struct Kept {
    container: String,
    restarts: i64,
    ip: String,
    start_time: String,
}

fn kept(p: &Value) -> Option<Kept> {
    Some(Kept {
        container: running_container(p)?,
        restarts: p["status"]["containerStatuses"][0]["restartCount"].as_i64()?,
        ip: p["status"]["podIP"].as_str()?.to_string(),
        start_time: p["status"]["startTime"].as_str()?.to_string(),
    })
}

fn ready(p: &Value) -> bool {
    let conditions = p["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[test]
fn an_agent_restart_keeps_its_pods_running() {
    const NODE: &str = "k8st-restart";
    let server = server("10.208.128.0/17", "10.209.128.0/17", "10.209.128.10");
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(&server, &dir.path().join("agent"), NODE, "k8st1", &[]);
    wait_node_ready(&server, &agent);
    let manifests = agent.data.join("agent/pod-manifests");
    std::fs::write(
        manifests.join("sleeper.yaml"),
        static_manifest("sleeper", "hi"),
    )
    .unwrap();
    server.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: demo}
spec:
  containers:
  - name: demo
    image: k8rs/demo
    ports: [{containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /demo/hello, port: 8080}
      periodSeconds: 2
---
apiVersion: v1
kind: Pod
metadata: {name: doomed}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: leaving}
spec:
  terminationGracePeriodSeconds: 2
  containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
"#,
    );
    let sleeper = format!("sleeper-{NODE}");
    let before = wait_pod(&server, &agent, "demo", "Running and Ready", |p| {
        let p = p?;
        ready(p).then(|| kept(p)).flatten()
    });
    assert_eq!(before.restarts, 0);
    let static_before = wait_pod(&server, &agent, &sleeper, "Running", |p| {
        running_container(p?)
    });
    let doomed = wait_pod(&server, &agent, "doomed", "Running", |p| {
        running_container(p?)
    });
    let leaving = wait_pod(&server, &agent, "leaving", "Running", |p| {
        running_container(p?)
    });
    let addr: SocketAddr = format!("{}:8080", before.ip).parse().unwrap();
    let hello = wait_for("demo answers", Duration::from_secs(30), || {
        http_get(addr, "/demo/hello")
    });
    assert_eq!(hello, "hello, world!");

    // SIGKILL: nothing of the agent runs its exit path. The pods keep serving.
    agent.stop("KILL");
    assert_eq!(
        http_get(addr, "/demo/hello").as_deref(),
        Some("hello, world!")
    );
    server.kubectl_ok(&["delete", "pod", "doomed", "--force", "--grace-period=0"]);
    server.kubectl_ok(&["delete", "pod", "leaving", "--wait=false"]);
    let restarted = Instant::now();
    agent.restart();
    // The terminating pod is finished by the new kubelet, graceful as ever.
    wait_pod(
        &server,
        &agent,
        "leaving",
        "deleted by the restarted kubelet",
        |p| p.is_none().then_some(()),
    );
    eprintln!(
        "restarted agent finished a terminating pod after {:?}",
        restarted.elapsed()
    );
    wait_for(
        "the deleted pods' containers removed",
        Duration::from_secs(60),
        || {
            let ids = cri_containers(&agent);
            let gone = !ids.iter().any(|c| c.0 == doomed || c.0 == leaving);
            (gone && !ids.is_empty()).then_some(())
        },
    );
    let check = |agent: &Agent, round: &str| {
        let after = wait_pod(&server, agent, "demo", "Running and Ready", |p| {
            let p = p?;
            ready(p).then(|| kept(p)).flatten()
        });
        assert_eq!(after, before, "after {round}");
        let running: Vec<String> = cri_containers(agent)
            .into_iter()
            .filter(|c| c.1)
            .map(|c| c.0)
            .collect();
        assert!(running.contains(&before.container), "{round}: {running:?}");
        assert!(running.contains(&static_before), "{round}: {running:?}");
        // Nothing was started again: the demo and the static pod are all there is.
        let ids = cri_containers(agent);
        assert_eq!(ids.len(), 2, "{round}: {ids:?}");
        let static_after = wait_pod(&server, agent, &sleeper, "Running", |p| {
            running_container(p?)
        });
        assert_eq!(static_after, static_before, "{round}");
        assert_eq!(
            http_get(addr, "/demo/hello").as_deref(),
            Some("hello, world!")
        );
        let log = agent.log();
        assert!(
            log.contains("adopted what the earlier kubelet left running"),
            "{round}"
        );
    };
    check(&agent, "SIGKILL");

    // SIGTERM: the agent's own exit path (its containerd stops too, gracefully).
    agent.stop("TERM");
    sandbox_died::assert_containerd_stopped(&agent);
    assert_eq!(
        http_get(addr, "/demo/hello").as_deref(),
        Some("hello, world!")
    );
    let log_len = agent.log().len();
    let restarted = Instant::now();
    agent.restart();
    wait_for(
        "the restarted agent adopting",
        Duration::from_secs(90),
        || {
            let log = agent.log();
            log[log_len..]
                .matches("adopted what the earlier kubelet left running")
                .nth(1)
                .map(|_| ())
        },
    );
    eprintln!(
        "restarted agent adopted its two pods after {:?}",
        restarted.elapsed()
    );
    check(&agent, "SIGTERM");
}
