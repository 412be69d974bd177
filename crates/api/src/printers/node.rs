//! Nodes, namespaces and component statuses.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, arr, name, s};
use super::{AGE, Col, NAME, col, wide};

pub(super) const NODE: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "Whether the node is Ready, and whether scheduling onto it is disabled.",
    ),
    col(
        "Roles",
        "string",
        "The node's roles, from its node-role.kubernetes.io/<role> labels.",
    ),
    AGE,
    col("Version", "string", "The kubelet version the node reports."),
    wide(
        "Internal-IP",
        "string",
        "The node's first InternalIP address.",
    ),
    wide(
        "External-IP",
        "string",
        "The node's first ExternalIP address.",
    ),
    wide(
        "OS-Image",
        "string",
        "The operating system the node reports.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "The kernel version the node reports.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "The container runtime and version the node reports.",
    ),
];

/// `node-role.kubernetes.io/<role>` labels and the older `kubernetes.io/role=<role>`.
fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = node["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" && !s(v).is_empty() {
                roles.insert(s(v).to_string());
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn address(node: &Value, kind: &str) -> String {
    arr(&node["status"]["addresses"])
        .iter()
        .find(|a| s(&a["type"]) == kind)
        .map_or("<none>", |a| s(&a["address"]))
        .to_string()
}

pub(super) fn node(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut status = match arr(&obj["status"]["conditions"])
        .iter()
        .rev()
        .find(|c| s(&c["type"]) == "Ready")
    {
        Some(c) if s(&c["status"]) == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if obj["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push("SchedulingDisabled");
    }
    let info = &obj["status"]["nodeInfo"];
    let or_unknown = |v: &Value| match s(v) {
        "" => "<unknown>".to_string(),
        x => x.to_string(),
    };
    vec![
        name(obj),
        status.join(",").into(),
        roles(obj).into(),
        age(obj, now),
        s(&info["kubeletVersion"]).into(),
        address(obj, "InternalIP").into(),
        address(obj, "ExternalIP").into(),
        or_unknown(&info["osImage"]).into(),
        or_unknown(&info["kernelVersion"]).into(),
        or_unknown(&info["containerRuntimeVersion"]).into(),
    ]
}

pub(super) const NAMESPACE: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "The namespace's phase: Active or Terminating.",
    ),
    AGE,
];

pub(super) fn namespace(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), s(&obj["status"]["phase"]).into(), age(obj, now)]
}

pub(super) const COMPONENT_STATUS: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "Whether the component reports itself healthy.",
    ),
    col("Message", "string", "The component's health message."),
    col(
        "Error",
        "string",
        "The error met while checking the component.",
    ),
];

pub(super) fn component_status(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let healthy = arr(&obj["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        None => ("Unknown", "", ""),
        Some(c) => (
            if s(&c["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            s(&c["message"]),
            s(&c["error"]),
        ),
    };
    vec![name(obj), status.into(), message.into(), error.into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn node_cells() {
        let n = json!({"metadata": {"name": "n1", "creationTimestamp": "2024-04-28T12:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": "",
                           "kubernetes.io/role": "etcd", "node-role.kubernetes.io/": "x"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.5", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.6.20"}}});
        assert_eq!(
            node(&n, now()),
            [
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,etcd,master"),
                json!("3d"),
                json!("v1.33.5"),
                json!("10.0.0.1"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0"),
                json!("containerd://1.6.20")
            ]
        );
        let bare = node(&json!({"metadata": {"name": "n2"}}), now());
        assert_eq!(&bare[1..3], &[json!("Unknown"), json!("<none>")]);
        assert_eq!(
            &bare[7..],
            &[json!("<unknown>"), json!("<unknown>"), json!("<unknown>")]
        );
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(node(&not_ready, now())[1], json!("NotReady"));
    }

    #[test]
    fn namespace_and_component_status_cells() {
        let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
        assert_eq!(namespace(&ns, now())[1], json!("Active"));
        let cs = json!({"metadata": {"name": "etcd-0"},
            "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            component_status(&cs, now()),
            [json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
        assert_eq!(component_status(&json!({}), now())[1], json!("Unknown"));
    }
}
