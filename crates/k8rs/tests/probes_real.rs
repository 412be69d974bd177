//! Container probes and lifecycle hooks on a real node: a liveness exec probe that
//! starts failing restarts the container (Unhealthy and Killing events as upstream's);
//! a readiness httpGet probe keeps the pod out of Ready (and its Service's ready
//! addresses) until the path exists; postStart and preStop hooks run in the container
//! (seen through a hostPath dir), and a failing postStart hook kills the container.
//! Needs root and scripts/deps.sh's packages; fails (never skips) without them. Its own
//! pod/service networks and bridge let it run beside the other real-container tests.

#[allow(dead_code)]
#[path = "support/real_node.rs"]
mod real_node;
mod support;

use std::time::Duration;

use real_node::{NodeOpts, RealNode};
use support::wait_for;

const OPTS: NodeOpts = NodeOpts {
    cluster_cidr: "10.200.0.0/16",
    service_cidr: "10.201.0.0/16",
    cluster_dns: "10.201.0.10",
    bridge: "k8rs-pr0",
    node_name: "k8rs-probe-test",
};

const LIVE: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "live"},
  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "busybox",
    "command": ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600"],
    "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/healthy"]},
                      "periodSeconds": 1, "failureThreshold": 2}}]}}"#;

const READY: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "web", "image": "busybox",
    "command": ["sh", "-c", "mkdir -p /www; (sleep 12; echo ok > /www/ready) & exec httpd -f -p 8080 -h /www"],
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1}}]}}"#;

/// The liveness probe would fail (threshold 1) until /tmp/started exists: only the
/// startup probe's gating keeps the container alive.
const SLOW: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"},
  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "busybox",
    "command": ["sh", "-c", "sleep 15; touch /tmp/started; sleep 3600"],
    "startupProbe": {"exec": {"command": ["test", "-f", "/tmp/started"]},
                     "periodSeconds": 1, "failureThreshold": 30},
    "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/started"]},
                      "periodSeconds": 1, "failureThreshold": 1}}]}}"#;

const SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}"#;

const HOOKS: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hooks"},
  "spec": {"terminationGracePeriodSeconds": 20,
    "volumes": [{"name": "host", "hostPath": {"path": "HOSTDIR", "type": "Directory"}}],
    "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
      "volumeMounts": [{"name": "host", "mountPath": "/host"}],
      "lifecycle": {
        "postStart": {"exec": {"command": ["sh", "-c", "echo post-start-ran > /host/poststart"]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop-ran > /host/prestop"]}}}}]}}"#;

const BAD_HOOK: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "badhook"},
  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": "busybox",
    "command": ["sleep", "3600"],
    "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}}}]}}"#;

/// `reason: message` lines of the pod's events.
fn events(node: &RealNode, pod: &str) -> String {
    node.jsonpath(
        &[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod}"),
        ],
        "{range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    )
}

const READY_PATH: &str = r#"{.status.conditions[?(@.type=="Ready")].status}"#;

#[test]
fn probes_and_hooks_on_real_containers() {
    let node = RealNode::start(OPTS);
    let s = node.server();
    let host_dir = s.dir.path().join("hooks");
    std::fs::create_dir_all(&host_dir).unwrap();
    s.apply(LIVE);
    s.apply(READY);
    s.apply(SERVICE);
    s.apply(&HOOKS.replace("HOSTDIR", host_dir.to_str().unwrap()));
    s.apply(BAD_HOOK);
    s.apply(SLOW);

    // Startup gating: not started (nor ready) while the startup probe fails.
    node.wait_pod(
        "slow",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    );
    let started = "{.status.containerStatuses[0].started}";
    assert_eq!(node.jsonpath(&["get", "pod", "slow"], started), "false");
    assert_eq!(node.jsonpath(&["get", "pod", "slow"], READY_PATH), "False");

    // Readiness: Running but not Ready while /ready is a 404, and only a not-ready
    // endpoint; Ready (and a ready endpoint) once the file exists.
    node.wait_pod("web", "{.status.phase}", "Running", Duration::from_secs(60));
    let ip = node.jsonpath(&["get", "pod", "web"], "{.status.podIP}");
    assert_eq!(node.jsonpath(&["get", "pod", "web"], READY_PATH), "False");
    assert_eq!(
        node.jsonpath(
            &["get", "pod", "web"],
            "{.status.containerStatuses[0].ready}"
        ),
        "false"
    );
    node.wait_pod_until(
        "web",
        "a not-ready endpoint",
        Duration::from_secs(20),
        || {
            let nr = node.jsonpath(
                &["get", "endpoints", "web"],
                "{.subsets[*].notReadyAddresses[*].ip}",
            );
            (nr == ip).then_some(())
        },
    );
    node.wait_pod_until("web", "readiness 404 event", Duration::from_secs(20), || {
        events(&node, "web")
            .contains("Warning Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 404")
            .then_some(())
    });
    node.wait_pod("web", READY_PATH, "True", Duration::from_secs(30));
    assert_eq!(
        node.jsonpath(
            &["get", "pod", "web"],
            "{.status.containerStatuses[0].ready}"
        ),
        "true"
    );
    node.wait_pod_until("web", "a ready endpoint", Duration::from_secs(20), || {
        let ready = node.jsonpath(
            &["get", "endpoints", "web"],
            "{.subsets[*].addresses[*].ip}",
        );
        (ready == ip).then_some(())
    });

    // Repeated failures are one event with a count, as upstream's correlator makes.
    let counts = node.jsonpath(
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=web,reason=Unhealthy",
        ],
        "{.items[*].count}",
    );
    assert!(
        counts
            .split_whitespace()
            .any(|c| c.parse::<u32>().unwrap_or(0) >= 2),
        "{counts:?}"
    );

    // Startup gating: started later, never killed by the liveness probe.
    node.wait_pod("slow", started, "true", Duration::from_secs(30));
    node.wait_pod("slow", READY_PATH, "True", Duration::from_secs(10));
    assert_eq!(
        node.jsonpath(
            &["get", "pod", "slow"],
            "{.status.containerStatuses[0].restartCount}"
        ),
        "0"
    );

    // Liveness: the file goes after 3 s, two failures later the container is killed
    // and started again.
    node.wait_pod_until("live", "a restart", Duration::from_secs(60), || {
        let n = node.jsonpath(
            &["get", "pod", "live"],
            "{.status.containerStatuses[0].restartCount}",
        );
        (n.parse::<u32>().unwrap_or(0) >= 1).then_some(())
    });
    let ev = events(&node, "live");
    assert!(
        ev.contains("Warning Unhealthy: Liveness probe failed: "),
        "{ev}"
    );
    assert!(
        ev.contains("Normal Killing: Container app failed liveness probe, will be restarted"),
        "{ev}"
    );
    node.wait_pod("live", READY_PATH, "True", Duration::from_secs(30));

    // Hooks: postStart ran; a failing postStart kills (and restarts) its container.
    wait_for("postStart output", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(host_dir.join("poststart")).ok()?;
        (text == "post-start-ran\n").then_some(())
    });
    node.wait_pod_until("badhook", "FailedPostStartHook", Duration::from_secs(30), || {
        let ev = events(&node, "badhook");
        (ev.contains("Warning FailedPostStartHook: Exec lifecycle hook ([sh -c exit 3]) for Container \"app\" in Pod \"badhook_default(")
            && ev.contains("failed - error: command 'sh -c exit 3' exited with 3: , message: \"\"")
            && ev.contains("Normal Killing: FailedPostStartHook"))
        .then_some(())
    });
    node.wait_pod_until("badhook", "a restart", Duration::from_secs(30), || {
        let n = node.jsonpath(
            &["get", "pod", "badhook"],
            "{.status.containerStatuses[0].restartCount}",
        );
        (n.parse::<u32>().unwrap_or(0) >= 1).then_some(())
    });

    // preStop runs on delete, before the container is stopped; `sleep` as PID 1
    // ignores SIGTERM, so the delete would take the whole 20 s without the hook's
    // grace accounting being right — it must still finish within the grace period.
    assert!(!host_dir.join("prestop").exists());
    s.kubectl_ok(&["delete", "pod", "hooks", "--wait=false"]);
    wait_for("preStop output", Duration::from_secs(15), || {
        let text = std::fs::read_to_string(host_dir.join("prestop")).ok()?;
        (text == "pre-stop-ran\n").then_some(())
    });
    let ev = events(&node, "hooks");
    assert!(
        ev.contains("Normal Killing: Stopping container app"),
        "{ev}"
    );
    wait_for("pod hooks gone", Duration::from_secs(40), || {
        (!s.kubectl(&["get", "pod", "hooks"]).status.success()).then_some(())
    });
}
