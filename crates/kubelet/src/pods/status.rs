//! A pod's status as upstream reports it: container states from CRI, the phase from
//! those states, and the conditions.

use std::collections::HashMap;

use cri::v1::{ContainerState, ContainerStatus};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use crate::time::{from_nanos, now};

/// What the worker knows about one container.
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub spec_image: &'a str,
    /// Why the container is not running, when it is not (image or config errors,
    /// CrashLoopBackOff).
    pub waiting: Option<(&'a str, &'a str)>,
    /// The runtime's status of the current container.
    pub current: Option<&'a ContainerStatus>,
    /// The state of the container before the current one, as `lastState`.
    pub last_terminated: Option<&'a ContainerStatus>,
    pub restart_count: u32,
    /// The startup probe passed (or there is none); counts only while running.
    pub started: bool,
    /// The readiness probe passed (or there is none); counts only while running.
    pub ready: bool,
}

fn terminated(s: &ContainerStatus) -> Value {
    let reason = if s.reason.is_empty() {
        if s.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
    } else {
        s.reason.as_str()
    };
    let mut t = json!({
        "exitCode": s.exit_code,
        "reason": reason,
        "startedAt": from_nanos(s.started_at),
        "finishedAt": from_nanos(s.finished_at),
        "containerID": format!("containerd://{}", s.id),
    });
    if !s.message.is_empty() {
        t["message"] = json!(s.message);
    }
    t
}

fn state(s: &ContainerStatus) -> ContainerState {
    ContainerState::try_from(s.state).unwrap_or(ContainerState::ContainerUnknown)
}

pub fn container_status(v: &ContainerView<'_>) -> Value {
    let waiting = |reason: &str, message: &str| {
        let mut w = json!({"reason": reason});
        if !message.is_empty() {
            w["message"] = json!(message);
        }
        json!({"waiting": w})
    };
    let (state_value, running) = match (v.waiting, v.current) {
        (Some((reason, message)), _) => (waiting(reason, message), false),
        (None, Some(s)) if state(s) == ContainerState::ContainerRunning => (
            json!({"running": {"startedAt": from_nanos(s.started_at)}}),
            true,
        ),
        (None, Some(s)) if state(s) == ContainerState::ContainerExited => {
            (json!({"terminated": terminated(s)}), false)
        }
        _ => (waiting("ContainerCreating", ""), false),
    };
    let image = v
        .current
        .and_then(|s| s.image.as_ref())
        .map(|i| i.image.as_str())
        .filter(|i| !i.is_empty())
        .unwrap_or(v.spec_image);
    let mut out = json!({
        "name": v.name,
        "image": image,
        "imageID": v.current.map(|s| s.image_ref.as_str()).unwrap_or_default(),
        "ready": running && v.started && v.ready,
        "started": running && v.started,
        "restartCount": v.restart_count,
        "state": state_value,
        "lastState": v.last_terminated.map_or(json!({}), |s| json!({"terminated": terminated(s)})),
    });
    if let Some(s) = v.current {
        out["containerID"] = json!(format!("containerd://{}", s.id));
    }
    out
}

/// Upstream's getPhase for pods without init containers.
pub fn phase(statuses: &[Value], restart_policy: &str) -> &'static str {
    let (mut waiting, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let st = &s["state"];
        if st.get("running").is_some() {
            running += 1;
        } else if let Some(t) = st.get("terminated") {
            stopped += 1;
            if t["exitCode"] == 0 {
                succeeded += 1;
            }
        } else if s["lastState"].get("terminated").is_some() {
            // Waiting to restart: counts as stopped, as upstream.
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    match () {
        _ if waiting > 0 => "Pending",
        _ if running > 0 => "Running",
        _ if stopped > 0 => match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ => "Failed",
        },
        _ => "Pending",
    }
}

/// Conditions with lastTransitionTime kept while a status holds.
pub struct Conditions(HashMap<&'static str, (bool, String)>);

/// The conditions the kubelet owns; others (PodScheduled) are kept as the pod has them.
const OURS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
];

impl Conditions {
    /// Seeded with the conditions the pod already reports, so a restarted kubelet
    /// keeps their lastTransitionTimes while they hold.
    pub fn new(pod: &Pod) -> Self {
        let mut known = HashMap::new();
        for c in pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
        {
            let kind = OURS.iter().find(|k| **k == c.type_);
            if let (Some(kind), Some(t)) = (kind, &c.last_transition_time) {
                let time = t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                known.insert(*kind, (c.status == "True", time));
            }
        }
        Conditions(known)
    }

    fn condition(
        &mut self,
        kind: &'static str,
        ok: bool,
        reason: Option<&str>,
        message: Option<String>,
    ) -> Value {
        let entry = self.0.entry(kind).or_insert_with(|| (ok, now()));
        if entry.0 != ok {
            *entry = (ok, now());
        }
        let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" },
                           "lastProbeTime": null, "lastTransitionTime": entry.1});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        c
    }

    /// The kubelet's conditions, plus the ones others own (PodScheduled) kept as they are.
    pub fn build(
        &mut self,
        pod: &Pod,
        sandbox_ready: bool,
        statuses: &[Value],
        incomplete_init: &[&str],
        phase: &str,
    ) -> Value {
        let terminal = phase == "Succeeded" || phase == "Failed";
        let unready: Vec<&str> = statuses
            .iter()
            .filter(|s| s["ready"] != true)
            .filter_map(|s| s["name"].as_str())
            .collect();
        let ready = unready.is_empty() && !terminal;
        let (reason, message) = if terminal {
            (Some("PodCompleted"), None)
        } else if ready {
            (None, None)
        } else {
            let names = unready.join(" ");
            (
                Some("ContainersNotReady"),
                Some(format!("containers with unready status: [{names}]")),
            )
        };
        let mut list = vec![
            self.condition("PodReadyToStartContainers", sandbox_ready, None, None),
            if incomplete_init.is_empty() {
                self.condition("Initialized", true, None, None)
            } else {
                let names = incomplete_init.join(" ");
                let m = format!("containers with incomplete status: [{names}]");
                self.condition(
                    "Initialized",
                    false,
                    Some("ContainersNotInitialized"),
                    Some(m),
                )
            },
            self.condition("Ready", ready, reason, message.clone()),
            self.condition("ContainersReady", ready, reason, message),
        ];
        // The kubelet sets PodScheduled itself where no scheduler did (static pods),
        // as upstream's generateAPIPodStatus.
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        if !conditions.is_some_and(|l| l.iter().any(|c| c.type_ == "PodScheduled")) {
            list.push(self.condition("PodScheduled", true, None, None));
        }
        for c in pod
            .status
            .iter()
            .flat_map(|s| s.conditions.iter().flatten())
        {
            if !OURS.contains(&c.type_.as_str()) {
                list.push(serde_json::to_value(c).expect("JSON"));
            }
        }
        Value::Array(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: Value, last: Value) -> Value {
        json!({"state": state, "lastState": last})
    }

    #[test]
    fn phases_follow_upstream() {
        let run = st(json!({"running": {}}), json!({}));
        let ok = st(json!({"terminated": {"exitCode": 0}}), json!({}));
        let bad = st(json!({"terminated": {"exitCode": 1}}), json!({}));
        let creating = st(json!({"waiting": {}}), json!({}));
        let backoff = st(
            json!({"waiting": {}}),
            json!({"terminated": {"exitCode": 1}}),
        );
        assert_eq!(phase(std::slice::from_ref(&creating), "Never"), "Pending");
        assert_eq!(phase(&[run.clone(), ok.clone()], "Never"), "Running");
        assert_eq!(phase(std::slice::from_ref(&ok), "Never"), "Succeeded");
        assert_eq!(phase(&[ok.clone(), bad.clone()], "Never"), "Failed");
        assert_eq!(phase(std::slice::from_ref(&bad), "OnFailure"), "Running");
        assert_eq!(phase(&[ok], "Always"), "Running");
        assert_eq!(phase(&[backoff], "Always"), "Running");
    }
}
