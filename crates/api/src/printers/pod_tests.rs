//! The STATUS / READY / RESTARTS cases follow upstream's printers_test.go
//! (TestPrintPod, TestPrintPodWithRestartableInitContainer, TestPrintNonTerminatedPod)
//! and the printPod rules they pin down.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

fn pod(spec: Value, status: Value) -> Value {
    json!({"metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:00:00Z"},
           "spec": spec, "status": status})
}

fn two_containers() -> Value {
    json!({"containers": [{"name": "a"}, {"name": "b"}]})
}

fn running(ready: bool, restarts: i64) -> Value {
    json!({"name": "a", "ready": ready, "restartCount": restarts,
           "state": {"running": {"startedAt": "2024-05-01T11:00:00Z"}}})
}

fn waiting(reason: &str) -> Value {
    json!({"name": "b", "restartCount": 0, "state": {"waiting": {"reason": reason}}})
}

fn terminated(reason: &str, exit: i64, signal: i64) -> Value {
    json!({"name": "b", "restartCount": 0,
           "state": {"terminated": {"reason": reason, "exitCode": exit, "signal": signal}}})
}

#[test]
fn status_ready_and_restarts() {
    let init2 =
        json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]});
    let init_status = |state: Value| json!({"name": "i1", "restartCount": 0, "state": state});
    let ready_cond = json!([{"type": "Ready", "status": "True"}]);
    let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
        // One ready container of two; restarts add up, with no time known.
        (
            "plain phase",
            pod(
                two_containers(),
                json!({"phase": "podPhase",
            "containerStatuses": [running(true, 3), {"name": "b", "restartCount": 3}]}),
            ),
            ("1/2", "podPhase", "6"),
        ),
        (
            "no statuses yet",
            pod(two_containers(), json!({"phase": "Pending"})),
            ("0/2", "Pending", "0"),
        ),
        (
            "waiting reason wins",
            pod(
                two_containers(),
                json!({"phase": "Pending",
            "containerStatuses": [running(true, 0), waiting("ContainerCreating")]}),
            ),
            ("1/2", "ContainerCreating", "0"),
        ),
        (
            "image pull",
            pod(
                two_containers(),
                json!({"phase": "Pending",
            "containerStatuses": [waiting("ErrImagePull")]}),
            ),
            ("0/2", "ErrImagePull", "0"),
        ),
        (
            "crash loop",
            pod(
                two_containers(),
                json!({"phase": "Running",
            "containerStatuses": [running(true, 0), waiting("CrashLoopBackOff")]}),
            ),
            ("1/2", "CrashLoopBackOff", "0"),
        ),
        (
            "terminated reason",
            pod(
                two_containers(),
                json!({"phase": "Running",
            "containerStatuses": [terminated("OOMKilled", 137, 0)]}),
            ),
            ("0/2", "OOMKilled", "0"),
        ),
        (
            "exit code without reason",
            pod(
                two_containers(),
                json!({"phase": "Failed",
            "containerStatuses": [terminated("", 2, 0)]}),
            ),
            ("0/2", "ExitCode:2", "0"),
        ),
        (
            "signal without reason",
            pod(
                two_containers(),
                json!({"phase": "Failed",
            "containerStatuses": [terminated("", 0, 9)]}),
            ),
            ("0/2", "Signal:9", "0"),
        ),
        (
            "the first container's state wins",
            pod(
                two_containers(),
                json!({"phase": "Running",
            "containerStatuses": [waiting("ImagePullBackOff"), terminated("Error", 1, 0)]}),
            ),
            ("0/2", "ImagePullBackOff", "0"),
        ),
        (
            "completed",
            pod(
                two_containers(),
                json!({"phase": "Succeeded",
            "containerStatuses": [terminated("Completed", 0, 0)]}),
            ),
            ("0/2", "Completed", "0"),
        ),
        (
            "completed but one still runs and is ready",
            pod(
                two_containers(),
                json!({"phase": "Running",
            "conditions": ready_cond, "containerStatuses": [running(true, 0), terminated("Completed", 0, 0)]}),
            ),
            ("1/2", "Running", "0"),
        ),
        (
            "completed but one still runs, pod not ready",
            pod(
                two_containers(),
                json!({"phase": "Running",
            "containerStatuses": [running(true, 0), terminated("Completed", 0, 0)]}),
            ),
            ("1/2", "NotReady", "0"),
        ),
        (
            "evicted",
            pod(
                two_containers(),
                json!({"phase": "Failed", "reason": "Evicted"}),
            ),
            ("0/2", "Evicted", "0"),
        ),
        (
            "scheduling gated",
            pod(
                two_containers(),
                json!({"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
            ),
            ("0/2", "SchedulingGated", "0"),
        ),
        (
            "init waiting to start",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [init_status(json!({"waiting": {"reason": "PodInitializing"}}))]}),
            ),
            ("0/1", "Init:0/2", "0"),
        ),
        (
            "second init running",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [init_status(json!({"terminated": {"exitCode": 0, "reason": "Completed"}})),
                                      init_status(json!({"running": {}}))]}),
            ),
            ("0/1", "Init:1/2", "0"),
        ),
        (
            "init failed",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [init_status(json!({"terminated": {"exitCode": 1, "reason": "Error"}}))]}),
            ),
            ("0/1", "Init:Error", "0"),
        ),
        (
            "init exit code",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [init_status(json!({"terminated": {"exitCode": 3}}))]}),
            ),
            ("0/1", "Init:ExitCode:3", "0"),
        ),
        (
            "init signal",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [init_status(json!({"terminated": {"exitCode": 137, "signal": 9}}))]}),
            ),
            ("0/1", "Init:Signal:9", "0"),
        ),
        // Exit code 0 counts as success even with a signal, so nothing is initializing.
        (
            "init exit 0",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [init_status(json!({"terminated": {"exitCode": 0, "signal": 9}}))]}),
            ),
            ("0/1", "Pending", "0"),
        ),
        (
            "init crash loop",
            pod(
                init2.clone(),
                json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "i1", "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
            ),
            ("0/1", "Init:CrashLoopBackOff", "4"),
        ),
        (
            "terminating",
            {
                let mut p = pod(
                    two_containers(),
                    json!({"phase": "Running",
                "containerStatuses": [running(true, 0)]}),
                );
                p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
                p
            },
            ("1/2", "Terminating", "0"),
        ),
        (
            "deleted after success keeps its status",
            {
                let mut p = pod(
                    two_containers(),
                    json!({"phase": "Succeeded",
                "containerStatuses": [terminated("Completed", 0, 0)]}),
                );
                p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
                p
            },
            ("0/2", "Completed", "0"),
        ),
        (
            "node lost",
            {
                let mut p = pod(
                    two_containers(),
                    json!({"phase": "Running", "reason": "NodeLost"}),
                );
                p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
                p
            },
            ("0/2", "Unknown", "0"),
        ),
    ];
    for (what, p, (ready, status, restarts)) in cases {
        let row = row(&p, now());
        assert_eq!(
            (
                row[1].as_str().unwrap(),
                row[2].as_str().unwrap(),
                row[3].as_str().unwrap()
            ),
            (ready, status, restarts),
            "{what}"
        );
    }
}

#[test]
fn restarts_say_when() {
    let mut c = running(true, 3);
    c["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:15Z"}});
    let p = pod(
        two_containers(),
        json!({"phase": "Running", "containerStatuses": [c]}),
    );
    assert_eq!(row(&p, now())[3], json!("3 (45s ago)"));
}

#[test]
fn sidecars_count_as_containers() {
    // A restartable init container that started counts towards READY; its restarts
    // stay counted once the pod is initialized.
    let spec = json!({"initContainers": [{"name": "side", "restartPolicy": "Always"}, {"name": "once"}],
                      "containers": [{"name": "a"}]});
    let status = json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}],
        "initContainerStatuses": [
            {"name": "side", "restartCount": 2, "started": true, "ready": true, "state": {"running": {}}},
            {"name": "once", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        "containerStatuses": [running(true, 1)]});
    let r = row(&pod(spec, status), now());
    assert_eq!(
        (&r[1], &r[2], &r[3]),
        (&json!("2/2"), &json!("Running"), &json!("3"))
    );
}

#[test]
fn wide_cells() {
    let spec = json!({"containers": [{"name": "a"}], "nodeName": "n1",
        "readinessGates": [{"conditionType": "x/one"}, {"conditionType": "x/two"}]});
    let status = json!({"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}],
        "conditions": [{"type": "x/one", "status": "True"}, {"type": "x/two", "status": "False"}]});
    let r = row(&pod(spec, status), now());
    assert_eq!(r.len(), COLUMNS.len());
    assert_eq!(r[0], json!("p"));
    assert_eq!(r[4], json!("60m"));
    assert_eq!(
        &r[5..],
        &[
            json!("10.0.0.9"),
            json!("n1"),
            json!("<none>"),
            json!("1/2")
        ]
    );
    let bare = row(&pod(json!({}), json!({})), now());
    assert_eq!(
        &bare[5..],
        &[
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}
