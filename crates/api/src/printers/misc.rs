//! Printers of kinds not (yet) in the built-in list, ready for when they are:
//! admission webhook configurations, certificate signing requests, runtime classes,
//! CSI drivers and nodes, volume attachments.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::cells::{age, arr, count, name, or_none, s};
use super::duration::human_duration;
use super::{AGE, Col, NAME, col};

pub(super) const WEBHOOK_CONFIGURATION: &[Col] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Number of webhooks in the configuration.",
    ),
    AGE,
];

pub(super) fn webhook_configuration(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), count(&obj["webhooks"]).into(), age(obj, now)]
}

pub(super) const CSR: &[Col] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "The signer asked to sign the request.",
    ),
    col("Requestor", "string", "The user who made the request."),
    col(
        "RequestedDuration",
        "string",
        "The validity asked for the certificate.",
    ),
    col(
        "Condition",
        "string",
        "Approved or Denied, Failed, and Issued once signed.",
    ),
];

pub(super) fn csr(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let has = |t: &str| {
        arr(&status["conditions"])
            .iter()
            .any(|c| s(&c["type"]) == t)
    };
    // Denied takes precedence over Approved.
    let mut condition = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !s(&status["certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let duration = match spec["expirationSeconds"].as_i64() {
        Some(secs) => human_duration(SignedDuration::from_secs(secs)),
        None => "<none>".to_string(),
    };
    vec![
        name(obj),
        age(obj, now),
        or_none(s(&spec["signerName"])).into(),
        s(&spec["username"]).into(),
        duration.into(),
        condition.into(),
    ]
}

pub(super) const RUNTIME_CLASS: &[Col] = &[
    NAME,
    col(
        "Handler",
        "string",
        "The CRI handler that runs pods of this class.",
    ),
    AGE,
];

pub(super) fn runtime_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), s(&obj["handler"]).into(), age(obj, now)]
}

pub(super) const CSI_NODE: &[Col] = &[
    NAME,
    col(
        "Drivers",
        "integer",
        "Number of CSI drivers registered on the node.",
    ),
    AGE,
];

pub(super) fn csi_node(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        count(&obj["spec"]["drivers"]).into(),
        age(obj, now),
    ]
}

pub(super) const CSI_DRIVER: &[Col] = &[
    NAME,
    col(
        "AttachRequired",
        "boolean",
        "Whether volumes need an attach step.",
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        "Whether mounts receive pod information.",
    ),
    col(
        "StorageCapacity",
        "boolean",
        "Whether the driver reports storage capacity.",
    ),
    col(
        "TokenRequests",
        "string",
        "Audiences of the service account tokens passed to the driver.",
    ),
    col(
        "RequiresRepublish",
        "boolean",
        "Whether volumes are mounted again periodically.",
    ),
    col(
        "Modes",
        "string",
        "The volume lifecycle modes the driver supports.",
    ),
    AGE,
];

pub(super) fn csi_driver(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let flag = |f: &str, default: bool| spec[f].as_bool().unwrap_or(default);
    let tokens = if spec["tokenRequests"].is_array() {
        let audiences: Vec<&str> = arr(&spec["tokenRequests"])
            .iter()
            .map(|t| s(&t["audience"]))
            .collect();
        audiences.join(",")
    } else {
        "<unset>".to_string()
    };
    let modes: Vec<&str> = arr(&spec["volumeLifecycleModes"]).iter().map(s).collect();
    vec![
        name(obj),
        flag("attachRequired", true).into(),
        flag("podInfoOnMount", false).into(),
        flag("storageCapacity", false).into(),
        tokens.into(),
        flag("requiresRepublish", false).into(),
        or_none(&modes.join(",")).into(),
        age(obj, now),
    ]
}

pub(super) const VOLUME_ATTACHMENT: &[Col] = &[
    NAME,
    col(
        "Attacher",
        "string",
        "The volume driver that attaches the volume.",
    ),
    col("PV", "string", "The persistent volume to attach."),
    col("Node", "string", "The node to attach the volume to."),
    col("Attached", "boolean", "Whether the volume is attached."),
    AGE,
];

pub(super) fn volume_attachment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    vec![
        name(obj),
        s(&spec["attacher"]).into(),
        s(&spec["source"]["persistentVolumeName"]).into(),
        s(&spec["nodeName"]).into(),
        obj["status"]["attached"].as_bool().unwrap_or(false).into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn csr_cells() {
        let c = json!({"metadata": {"name": "node-csr-1"},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:n1",
                     "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
        assert_eq!(
            &csr(&c, now())[2..],
            &[
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:n1"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let pending = csr(&json!({}), now());
        assert_eq!(
            &pending[2..],
            &[
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Pending")
            ]
        );
    }

    #[test]
    fn other_cells() {
        let wh = json!({"metadata": {"name": "w"}, "webhooks": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(webhook_configuration(&wh, now())[1], json!(2));
        let d = json!({"metadata": {"name": "d"}, "spec": {"volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
        assert_eq!(
            &csi_driver(&d, now())[1..7],
            &[
                json!(true),
                json!(false),
                json!(false),
                json!("<unset>"),
                json!(false),
                json!("Persistent,Ephemeral")
            ]
        );
        let va = json!({"spec": {"attacher": "csi.x", "source": {"persistentVolumeName": "pv1"}, "nodeName": "n1"},
            "status": {"attached": true}});
        assert_eq!(
            &volume_attachment(&va, now())[1..5],
            &[json!("csi.x"), json!("pv1"), json!("n1"), json!(true)]
        );
        assert_eq!(
            runtime_class(&json!({"handler": "runc"}), now())[1],
            json!("runc")
        );
        assert_eq!(
            csi_node(&json!({"spec": {"drivers": [{}]}}), now())[1],
            json!(1)
        );
    }
}
