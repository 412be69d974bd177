//! Pods: upstream's `printPod`, whose STATUS cell condenses the phase, the init
//! containers and the containers into one word (`Init:1/2`, `CrashLoopBackOff`,
//! `Completed`, `Terminating`, ...), and whose RESTARTS cell says when the last one was.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, arr, int, name, or_none, s};
use super::duration::{human_duration, parse_time};
use super::{AGE, Col, NAME, col, wide};

pub(super) const COLUMNS: &[Col] = &[
    NAME,
    col(
        "Ready",
        "string",
        "Ready containers of all the pod's containers.",
    ),
    col(
        "Status",
        "string",
        "The pod's state, condensed from its phase and its containers' states.",
    ),
    col(
        "Restarts",
        "string",
        "Container restarts in this pod, and how long ago the last one happened.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "The pod's IP address (the first if it has several).",
    ),
    wide("Node", "string", "The node the pod is bound to."),
    wide(
        "Nominated Node",
        "string",
        "The node the scheduler nominated for the pod after preempting others there.",
    ),
    wide(
        "Readiness Gates",
        "string",
        "Readiness gates whose condition is True, of all the pod's readiness gates.",
    ),
];

/// The first condition of `kind`, and whether its status is True.
fn condition_true(status: &Value, kind: &str) -> bool {
    arr(&status["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == kind)
        .is_some_and(|c| s(&c["status"]) == "True")
}

/// Remembers the latest `lastState.terminated.finishedAt` seen.
fn note_restart(last: &mut Option<Timestamp>, container_status: &Value) {
    let finished = container_status["lastState"]["terminated"]["finishedAt"].as_str();
    if let Some(t) = finished.and_then(parse_time)
        && last.is_none_or(|l| l < t)
    {
        *last = Some(t);
    }
}

/// `Init:<reason>` or `Signal:9` / `ExitCode:1` style text for a terminated state
/// without a reason; `prefix` is "Init:" for init containers.
fn terminated_reason(term: &Value, prefix: &str) -> String {
    let reason = s(&term["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int(&term["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(&term["exitCode"]))
    }
}

/// The READY, STATUS and RESTARTS cells.
fn summarize(pod: &Value, now: Timestamp) -> (String, String, String) {
    let (spec, status) = (&pod["spec"], &pod["status"]);
    let phase = s(&status["phase"]);
    let mut reason = match s(&status["reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    // A pod held back by scheduling gates says so.
    if arr(&status["conditions"])
        .iter()
        .any(|c| s(&c["type"]) == "PodScheduled" && s(&c["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let init_specs = arr(&spec["initContainers"]);
    // Sidecars: init containers with restartPolicy Always, counted as containers.
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| s(&c["name"]) == name && s(&c["restartPolicy"]) == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| s(&c["restartPolicy"]) == "Always")
        .count();
    let total = arr(&spec["containers"]).len() + sidecars;
    let mut ready = 0;
    let (mut restarts, mut last_restart) = (0, None);
    let (mut sidecar_restarts, mut sidecar_last_restart) = (0, None);

    let mut initializing = false;
    for (i, c) in arr(&status["initContainerStatuses"]).iter().enumerate() {
        restarts += int(&c["restartCount"]);
        note_restart(&mut last_restart, c);
        let sidecar = is_sidecar(s(&c["name"]));
        if sidecar {
            sidecar_restarts += int(&c["restartCount"]);
            note_restart(&mut sidecar_last_restart, c);
        }
        let (term, waiting) = (&c["state"]["terminated"], &c["state"]["waiting"]);
        if term.is_object() && int(&term["exitCode"]) == 0 {
            continue;
        }
        if sidecar && c["started"].as_bool() == Some(true) {
            if c["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if term.is_object() {
            terminated_reason(term, "Init:")
        } else if waiting.is_object() && !matches!(s(&waiting["reason"]), "" | "PodInitializing") {
            format!("Init:{}", s(&waiting["reason"]))
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(status, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        // Last to first, so that the first container's state wins.
        for c in arr(&status["containerStatuses"]).iter().rev() {
            restarts += int(&c["restartCount"]);
            note_restart(&mut last_restart, c);
            let (term, waiting) = (&c["state"]["terminated"], &c["state"]["waiting"]);
            if waiting.is_object() && !s(&waiting["reason"]).is_empty() {
                reason = s(&waiting["reason"]).to_string();
            } else if term.is_object() {
                reason = terminated_reason(term, "");
            } else if c["ready"].as_bool() == Some(true) && c["state"]["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        // Some containers finished, others still run: the pod as a whole runs.
        if reason == "Completed" && has_running {
            reason = if condition_true(status, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = pod["metadata"]["deletionTimestamp"].is_string();
    if deleting && s(&status["reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && !matches!(phase, "Succeeded" | "Failed") {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", human_duration(now.duration_since(t)))
        }
        _ => restarts.to_string(),
    };
    (format!("{ready}/{total}"), reason, restarts_cell)
}

pub(super) fn row(pod: &Value, now: Timestamp) -> Vec<Value> {
    let (ready, status, restarts) = summarize(pod, now);
    let st = &pod["status"];
    let ip = st["podIPs"][0]["ip"]
        .as_str()
        .or_else(|| st["podIP"].as_str())
        .unwrap_or_default();
    let gates = arr(&pod["spec"]["readinessGates"]);
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| condition_true(st, s(&g["conditionType"])))
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        name(pod),
        ready.into(),
        status.into(),
        restarts.into(),
        age(pod, now),
        or_none(ip).into(),
        or_none(s(&pod["spec"]["nodeName"])).into(),
        or_none(s(&st["nominatedNodeName"])).into(),
        gates_cell.into(),
    ]
}

#[cfg(test)]
#[path = "pod_tests.rs"]
mod tests;
