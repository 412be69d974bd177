//! securityContext and memory limits on a real node: runAsUser/runAsGroup and
//! supplementalGroups reach the process, fsGroup is among its groups and owns its
//! emptyDir and secret volumes, readOnlyRootFilesystem makes / read-only,
//! capabilities are dropped and added, privileged gets every capability, runAsNonRoot
//! refuses a root image with upstream's CreateContainerConfigError message, and a
//! container over its memory limit is OOMKilled and reported so. Also the kubelet's
//! /stats/summary and /metrics/resource, read through the API server's node proxy,
//! and `kubectl top` (metrics.k8s.io served from the kubelets' summaries).
//! Needs root and scripts/deps.sh's packages; fails (never skips) without them.

#[allow(dead_code)]
#[path = "support/real_node.rs"]
mod real_node;
mod support;

use std::time::Duration;

use real_node::{NodeOpts, RealNode};
use support::wait_for;

const OPTS: NodeOpts = NodeOpts {
    cluster_cidr: "10.210.0.0/16",
    service_cidr: "10.211.0.0/16",
    cluster_dns: "10.211.0.10",
    bridge: "k8rs-sc0",
    node_name: "k8rs-security-test",
};

/// A busybox pod that sleeps, with `sc` as its container's securityContext and
/// `pod_sc` as the pod's.
fn sleeper(name: &str, pod_sc: &str, sc: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
  "spec": {{"terminationGracePeriodSeconds": 0, "securityContext": {pod_sc},
    "containers": [{{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
      "securityContext": {sc}}}]}}}}"#
    )
}

/// runAsUser 1000 with fsGroup 2000, an emptyDir and a secret (0400) mounted.
const FS_GROUP: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: fsg}
stringData: {key: s3cret}
---
apiVersion: v1
kind: Pod
metadata: {name: fsgroup}
spec:
  terminationGracePeriodSeconds: 0
  securityContext: {runAsUser: 1000, fsGroup: 2000}
  containers:
  - name: app
    image: busybox
    command: [sleep, "3600"]
    volumeMounts: [{name: data, mountPath: /data}, {name: secret, mountPath: /secret}]
  volumes:
  - {name: data, emptyDir: {}}
  - {name: secret, secret: {secretName: fsg, defaultMode: 0400}}
"#;

/// Doubles a shell string until the 16 MiB limit is hit.
const OOM: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "oom"},
  "spec": {"restartPolicy": "Never", "containers": [{"name": "hog", "image": "busybox",
    "command": ["sh", "-c", "a=x; while true; do a=$a$a; done"],
    "resources": {"limits": {"memory": "16Mi"}}}]}}"#;

fn cap_eff(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn security_context_and_oom_on_real_containers() {
    let node = RealNode::start(OPTS);
    let s = node.server();
    let ids = r#"{"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000]}"#;
    s.apply(&sleeper(
        "ids",
        ids,
        r#"{"allowPrivilegeEscalation": false}"#,
    ));
    s.apply(&sleeper("ro", "{}", r#"{"readOnlyRootFilesystem": true}"#));
    let caps = r#"{"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}"#;
    s.apply(&sleeper("caps", "{}", caps));
    s.apply(&sleeper("priv", "{}", r#"{"privileged": true}"#));
    s.apply(&sleeper("nonroot", r#"{"runAsNonRoot": true}"#, "{}"));
    s.apply(OOM);
    s.apply(FS_GROUP);
    for pod in ["ids", "ro", "caps", "priv", "fsgroup"] {
        node.wait_pod(pod, "{.status.phase}", "Running", Duration::from_secs(60));
    }
    let exec = |pod: &str, cmd: &[&str]| {
        let out = s.kubectl(&[&["exec", pod, "--"], cmd].concat());
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };

    // The user and groups are the pod's; no_new_privs is set.
    let (ok, id) = exec("ids", &["id"]);
    assert!(ok, "{id}");
    assert!(id.contains("uid=1000 gid=3000"), "{id}");
    assert!(id.contains("4000"), "{id}");
    let (_, status) = exec("ids", &["cat", "/proc/self/status"]);
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    // Its only container runs as 1000: the service account token is that user's, 0600,
    // and readable by it (upstream's FsUser).
    let token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    let script = format!("stat -L -c '%u %a' {token} && head -c 3 {token}");
    let (ok, out) = exec("ids", &["sh", "-c", &script]);
    assert_eq!((ok, out.as_str()), (true, "1000 600\neyJ"), "{out}");

    // fsGroup: a supplemental group of the process, the group of its volumes (setgid
    // directories, so new files get it too); the secret keeps its 0400 plus group read.
    let (ok, id) = exec("fsgroup", &["id"]);
    assert!(ok && id.contains("uid=1000") && id.contains("2000"), "{id}");
    let script = "echo hi > /data/f && stat -c '%g %a' /data /data/f /secret && \
        stat -L -c '%g %a' /secret/key && cat /secret/key && echo && \
        stat -L -c '%u %g %a' /var/run/secrets/kubernetes.io/serviceaccount/token";
    let (ok, out) = exec("fsgroup", &["sh", "-c", script]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "2000 2777",
            "2000 644",
            "2000 2755",
            "2000 440",
            "s3cret",
            "1000 2000 640"
        ],
        "{out}"
    );

    let (ok, out) = exec("ro", &["touch", "/file"]);
    assert!(!ok && out.contains("Read-only file system"), "{out}");
    let (ok, out) = exec("ro", &["touch", "/dev/shm/file"]);
    assert!(ok, "tmpfs mounts stay writable: {out}");

    // Only CAP_NET_BIND_SERVICE (bit 10) is left.
    let (_, status) = exec("caps", &["cat", "/proc/self/status"]);
    assert_eq!(cap_eff(&status), "0000000000000400", "{status}");

    // Privileged: every capability root has on the host.
    let (_, status) = exec("priv", &["cat", "/proc/self/status"]);
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(cap_eff(&status), cap_eff(&host), "{status}");
    let (_, plain) = exec("ro", &["cat", "/proc/self/status"]);
    assert_ne!(cap_eff(&plain), cap_eff(&host), "unprivileged has fewer");
    let (_, masked) = exec("ro", &["cat", "/proc/kcore"]);
    assert!(!masked.contains("ELF"), "/proc/kcore is masked");

    // The kubelet's stats through the API server's node proxy (what `kubectl top`'s
    // metrics pipeline reads).
    let node_path = format!("/api/v1/nodes/{}/proxy", OPTS.node_name);
    let summary = s.kubectl_ok(&["get", "--raw", &format!("{node_path}/stats/summary")]);
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["node"]["nodeName"], OPTS.node_name);
    assert!(
        summary["node"]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    let pods = summary["pods"].as_array().unwrap();
    let ids_pod = pods.iter().find(|p| p["podRef"]["name"] == "ids");
    let ids_pod = ids_pod.unwrap_or_else(|| panic!("no ids pod in {summary}"));
    assert_eq!(ids_pod["containers"][0]["name"], "app");
    assert!(
        ids_pod["memory"]["workingSetBytes"].as_u64().unwrap() > 0,
        "{ids_pod}"
    );
    assert!(
        ids_pod["cpu"]["usageCoreNanoSeconds"].as_u64().is_some(),
        "{ids_pod}"
    );
    let metrics = s.kubectl_ok(&["get", "--raw", &format!("{node_path}/metrics/resource")]);
    let line = metrics.lines().find(|l| {
        l.starts_with(
            r#"container_memory_working_set_bytes{container="app",namespace="default",pod="ids"}"#,
        )
    });
    assert!(line.is_some(), "{metrics}");
    assert!(
        metrics.contains("\nnode_cpu_usage_seconds_total "),
        "{metrics}"
    );

    // kubectl top: metrics.k8s.io from the kubelets, once they have a CPU rate.
    let top = wait_for("kubectl top node", Duration::from_secs(60), || {
        let out = s.kubectl(&["top", "node"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    let header = top.lines().next().unwrap_or_default();
    assert!(
        header.contains("CPU(cores)") && header.contains("MEMORY(bytes)"),
        "{top}"
    );
    assert!(top.contains(OPTS.node_name), "{top}");
    let top = wait_for("kubectl top pod ids", Duration::from_secs(30), || {
        let out = s.kubectl(&["top", "pod", "ids", "--containers"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(
        top.lines()
            .any(|l| l.starts_with("ids ") && l.contains(" app ")),
        "{top}"
    );
    let gone = s.kubectl_err(&["top", "pod", "no-such-pod"]);
    assert!(gone.contains("not found"), "{gone}");

    // runAsNonRoot with busybox (user root): refused before the container exists.
    let uid = node.jsonpath(&["get", "pod", "nonroot"], "{.metadata.uid}");
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    node.wait_pod(
        "nonroot",
        waiting,
        "CreateContainerConfigError",
        Duration::from_secs(60),
    );
    let message = node.jsonpath(
        &["get", "pod", "nonroot"],
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert_eq!(
        message,
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: app)"
        )
    );

    // Over its memory limit: killed by the kernel, reported as OOMKilled (137).
    node.wait_pod("oom", "{.status.phase}", "Failed", Duration::from_secs(60));
    let terminated = node.jsonpath(
        &["get", "pod", "oom"],
        "{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}",
    );
    assert_eq!(terminated, "OOMKilled 137");
    let table = s.kubectl_ok(&["get", "pod", "oom"]);
    assert!(table.contains("OOMKilled"), "{table}");
}
