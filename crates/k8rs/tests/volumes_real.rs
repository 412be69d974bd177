//! Pod volumes on a real node: configMap, secret, emptyDir (disk and memory), hostPath,
//! downwardAPI and the projected service account token the ServiceAccount admission
//! injects, seen from inside busybox containers (through the log files the kubelet
//! writes). Needs root and scripts/deps.sh's packages; fails (never skips) without
//! them. Its own pod/service networks and bridge let it run beside the other
//! real-container tests.

#[path = "support/real_node.rs"]
mod real_node;
mod support;

use std::time::Duration;

use real_node::{NodeOpts, RealNode};
use support::wait_for;

const OPTS: NodeOpts = NodeOpts {
    cluster_cidr: "10.194.0.0/16",
    service_cidr: "10.195.0.0/16",
    cluster_dns: "10.195.0.10",
    bridge: "k8rs-vo0",
    node_name: "k8rs-vol-test",
};

/// The kubelet re-renders API-data volumes every 10 s; allow for that plus the
/// container's own 1 s loop and a slow machine.
const UPDATE_WITHIN: Duration = Duration::from_secs(40);

const POD: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vols", "labels": {"app": "vols"}},
  "spec": {
    "terminationGracePeriodSeconds": 1,
    "volumes": [
      {"name": "cfg", "configMap": {"name": "app-config"}},
      {"name": "sec", "secret": {"secretName": "app-secret", "items": [{"key": "password", "path": "pw", "mode": 256}]}},
      {"name": "shared", "emptyDir": {}},
      {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
      {"name": "host", "hostPath": {"path": "HOSTDIR", "type": "Directory"}},
      {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "mem_limit", "resourceFieldRef": {"containerName": "reader", "resource": "limits.memory", "divisor": "1Mi"}}]}}
    ],
    "containers": [
      {"name": "writer", "image": "busybox",
       "command": ["sh", "-c", "echo shared-by-writer > /shared/file; echo written-in-pod > /host/from-pod; sleep 3600"],
       "volumeMounts": [{"name": "shared", "mountPath": "/shared"}, {"name": "host", "mountPath": "/host"}]},
      {"name": "reader", "image": "busybox",
       "resources": {"limits": {"memory": "64Mi"}},
       "command": ["sh", "-c", "SA=/var/run/secrets/kubernetes.io/serviceaccount; while true; do echo \"CM=$(cat /cfg/greeting)\"; echo \"SEC=$(cat /sec/pw) MODE=$(stat -L -c %a /sec/pw)\"; echo \"SHARED=$(cat /shared/file)\"; echo \"HOST=$(cat /host/host.txt)\"; echo \"SUB=$(cat /sub.txt)\"; echo \"MEMFS=$(awk '$2==\"/mem\"{print $3}' /proc/mounts)\"; echo \"LABELS=$(cat /info/labels) MEMLIMIT=$(cat /info/mem_limit)\"; echo \"TOKENPARTS=$(awk -F. '{print NF}' $SA/token) CA=$(grep -c 'BEGIN CERTIFICATE' $SA/ca.crt) NS=$(cat $SA/namespace)\"; echo \"RO=$(touch /cfg/x 2>&1 >/dev/null | grep -c Read-only)\"; sleep 1; done"],
       "volumeMounts": [
         {"name": "cfg", "mountPath": "/cfg"},
         {"name": "sec", "mountPath": "/sec"},
         {"name": "shared", "mountPath": "/shared", "readOnly": true},
         {"name": "host", "mountPath": "/sub.txt", "subPath": "host.txt"},
         {"name": "mem", "mountPath": "/mem"},
         {"name": "host", "mountPath": "/host"},
         {"name": "info", "mountPath": "/info"}]}
    ]}}"#;

fn log_of(node: &RealNode, pod: &str, container: &str) -> String {
    std::fs::read_to_string(node.log_path("default", pod, container)).unwrap_or_default()
}

/// Waits until the container's log has a line ending in `line`.
fn wait_log(node: &RealNode, pod: &str, container: &str, line: &str, within: Duration) {
    node.wait_pod_until(pod, &format!("log line {line:?}"), within, || {
        let log = log_of(node, pod, container);
        log.lines()
            .any(|l| l.ends_with(&format!(" {line}")))
            .then_some(())
    });
}

#[test]
fn pods_mount_volumes() {
    let node = RealNode::start(OPTS);
    let s = node.server();
    // The ServiceAccount controller and the root CA publisher make these.
    wait_for(
        "default service account and kube-root-ca.crt",
        Duration::from_secs(30),
        || {
            let sa = s.kubectl(&["get", "serviceaccount", "default"]);
            let ca = s.kubectl(&["get", "configmap", "kube-root-ca.crt"]);
            (sa.status.success() && ca.status.success()).then_some(())
        },
    );

    let host_dir = s.dir.path().join("host-data");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("host.txt"), "from-the-host\n").unwrap();
    s.kubectl_ok(&[
        "create",
        "configmap",
        "app-config",
        "--from-literal=greeting=hello-cm",
    ]);
    s.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "--from-literal=password=s3cret",
    ]);
    s.apply(&POD.replace("HOSTDIR", host_dir.to_str().unwrap()));

    node.wait_pod(
        "vols",
        "{.status.phase}",
        "Running",
        Duration::from_secs(40),
    );
    let within = Duration::from_secs(20);
    wait_log(&node, "vols", "reader", "CM=hello-cm", within);
    wait_log(&node, "vols", "reader", "SEC=s3cret MODE=400", within);
    wait_log(&node, "vols", "reader", "SHARED=shared-by-writer", within);
    wait_log(&node, "vols", "reader", "HOST=from-the-host", within);
    wait_log(&node, "vols", "reader", "SUB=from-the-host", within);
    wait_log(&node, "vols", "reader", "MEMFS=tmpfs", within);
    wait_log(
        &node,
        "vols",
        "reader",
        "LABELS=app=\"vols\" MEMLIMIT=64",
        within,
    );
    wait_log(
        &node,
        "vols",
        "reader",
        "TOKENPARTS=3 CA=1 NS=default",
        within,
    );
    wait_log(&node, "vols", "reader", "RO=1", within);
    let from_pod = std::fs::read_to_string(host_dir.join("from-pod")).unwrap();
    assert_eq!(from_pod, "written-in-pod\n");

    // The injected volume and its mount, as upstream's ServiceAccount admission adds.
    let mounts = node.jsonpath(
        &["get", "pod", "vols"],
        "{.spec.containers[1].volumeMounts[*].mountPath}",
    );
    assert!(
        mounts.contains("/var/run/secrets/kubernetes.io/serviceaccount"),
        "{mounts}"
    );

    // The token is a JWT for the pod's service account, bound to the pod.
    let uid = node.jsonpath(&["get", "pod", "vols"], "{.metadata.uid}");
    let projected = node.data.join(format!(
        "agent/kubelet/pods/{uid}/volumes/kubernetes.io~projected"
    ));
    let api_access = std::fs::read_dir(&projected)
        .unwrap()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("kube-api-access-")
        })
        .expect("kube-api-access volume dir")
        .path();
    let token = std::fs::read_to_string(api_access.join("token")).unwrap();
    let claims = token.split('.').nth(1).expect("JWT payload");
    let claims = String::from_utf8(base64_url_decode(claims)).unwrap();
    assert!(
        claims.contains("system:serviceaccount:default:default"),
        "{claims}"
    );
    assert!(claims.contains(&uid), "token bound to the pod: {claims}");

    // A configMap update reaches the running container.
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "app-config",
        "-p",
        r#"{"data": {"greeting": "updated-cm"}}"#,
    ]);
    wait_log(&node, "vols", "reader", "CM=updated-cm", UPDATE_WITHIN);

    // A missing configMap keeps the pod in ContainerCreating with a FailedMount event;
    // creating the configMap lets it start.
    s.apply(
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiter"},
            "spec": {"terminationGracePeriodSeconds": 1,
              "volumes": [{"name": "cfg", "configMap": {"name": "later"}}],
              "containers": [{"name": "main", "image": "busybox",
                "command": ["sh", "-c", "cat /cfg/k; echo; sleep 3600"],
                "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}]}}"#,
    );
    node.wait_pod(
        "waiter",
        "{.status.containerStatuses[0].state.waiting.reason}",
        "ContainerCreating",
        Duration::from_secs(20),
    );
    let want = r#"MountVolume.SetUp failed for volume "cfg" : configmap "later" not found"#;
    node.wait_pod_until(
        "waiter",
        "FailedMount event",
        Duration::from_secs(20),
        || {
            let events = node.jsonpath(
                &[
                    "get",
                    "events",
                    "--field-selector",
                    "involvedObject.name=waiter",
                ],
                "{range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
            );
            events
                .contains(&format!("FailedMount: {want}"))
                .then_some(())
        },
    );
    assert_eq!(
        node.jsonpath(&["get", "pod", "waiter"], "{.status.phase}"),
        "Pending"
    );
    s.kubectl_ok(&["create", "configmap", "later", "--from-literal=k=now-here"]);
    node.wait_pod(
        "waiter",
        "{.status.phase}",
        "Running",
        Duration::from_secs(30),
    );
    wait_log(&node, "waiter", "main", "now-here", within);

    // A claim bound to a hostPath PV mounts the PV's path. There is no PV binder yet,
    // so the test binds them itself: until the claim is Bound the pod waits.
    let pv_dir = s.dir.path().join("pv-data");
    std::fs::create_dir_all(&pv_dir).unwrap();
    s.apply(&format!(
        r#"{{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {{"name": "pv1"}},
            "spec": {{"capacity": {{"storage": "1Gi"}}, "accessModes": ["ReadWriteOnce"],
              "hostPath": {{"path": "{}", "type": "Directory"}},
              "claimRef": {{"namespace": "default", "name": "claim"}}}}}}"#,
        pv_dir.display()
    ));
    s.apply(
        r#"{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "claim"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pv1",
              "resources": {"requests": {"storage": "1Gi"}}}}"#,
    );
    s.apply(
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "claimer"},
            "spec": {"terminationGracePeriodSeconds": 1,
              "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}],
              "containers": [{"name": "main", "image": "busybox",
                "command": ["sh", "-c", "echo via-claim > /data/out; sleep 3600"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}"#,
    );
    node.wait_pod(
        "claimer",
        "{.status.containerStatuses[0].state.waiting.reason}",
        "ContainerCreating",
        Duration::from_secs(20),
    );
    s.kubectl_ok(&[
        "patch",
        "pvc",
        "claim",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"phase": "Bound"}}"#,
    ]);
    node.wait_pod(
        "claimer",
        "{.status.phase}",
        "Running",
        Duration::from_secs(30),
    );
    wait_for("file written through the claim", within, || {
        std::fs::read_to_string(pv_dir.join("out"))
            .ok()
            .filter(|t| t == "via-claim\n")
    });

    // Deleting the pod unmounts and removes its volumes; the hostPath stays.
    let pod_dir = node.data.join(format!("agent/kubelet/pods/{uid}"));
    assert!(pod_dir.exists());
    s.kubectl_ok(&["delete", "pod", "vols", "--wait=true"]);
    wait_for("pod volumes removed", Duration::from_secs(20), || {
        (!pod_dir.exists()).then_some(())
    });
    let mounted = cri::mounts::mount_points_under(&node.data).unwrap();
    assert!(
        !mounted.iter().any(|p| p.starts_with(&pod_dir)),
        "{mounted:?}"
    );
    assert!(host_dir.join("host.txt").exists());
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
