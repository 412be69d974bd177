//! Persistent volumes, persistent volume claims, storage classes.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, arr, name, quantity, s};
use super::{AGE, Col, NAME, col, wide};

/// The beta annotation that overrides storageClassName, as upstream still honours.
const CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// `RWO,ROX,RWX,RWOP` in that order, each once; upstream's `GetAccessModesAsString`.
fn access_modes(modes: &Value) -> String {
    let has = |m: &str| arr(modes).iter().any(|x| s(x) == m);
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn class_name(obj: &Value) -> &str {
    match obj["metadata"]["annotations"][CLASS_ANNOTATION].as_str() {
        Some(c) => c,
        None => s(&obj["spec"]["storageClassName"]),
    }
}

fn unset_or(v: &Value) -> String {
    v.as_str().unwrap_or("<unset>").to_string()
}

fn phase_or_terminating(obj: &Value) -> String {
    if obj["metadata"]["deletionTimestamp"].is_string() {
        "Terminating".to_string()
    } else {
        s(&obj["status"]["phase"]).to_string()
    }
}

pub(super) const PERSISTENT_VOLUME: &[Col] = &[
    NAME,
    col("Capacity", "string", "The volume's storage capacity."),
    col(
        "Access Modes",
        "string",
        "How the volume can be mounted: RWO, ROX, RWX, RWOP.",
    ),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when its claim goes: Retain or Delete.",
    ),
    col(
        "Status",
        "string",
        "The volume's phase: Available, Bound, Released or Failed.",
    ),
    col(
        "Claim",
        "string",
        "The claim bound to the volume, as namespace/name.",
    ),
    col("StorageClass", "string", "The storage class of the volume."),
    col(
        "VolumeAttributesClass",
        "string",
        "The volume attributes class of the volume.",
    ),
    col("Reason", "string", "Why the volume is in its phase."),
    AGE,
    wide("VolumeMode", "string", "Filesystem or Block."),
];

pub(super) fn persistent_volume(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let claim = &spec["claimRef"];
    let claim_cell = if claim.is_object() {
        format!("{}/{}", s(&claim["namespace"]), s(&claim["name"]))
    } else {
        String::new()
    };
    vec![
        name(obj),
        quantity(&spec["capacity"]["storage"]).into(),
        access_modes(&spec["accessModes"]).into(),
        s(&spec["persistentVolumeReclaimPolicy"]).into(),
        phase_or_terminating(obj).into(),
        claim_cell.into(),
        class_name(obj).into(),
        unset_or(&spec["volumeAttributesClassName"]).into(),
        s(&obj["status"]["reason"]).into(),
        age(obj, now),
        unset_or(&spec["volumeMode"]).into(),
    ]
}

pub(super) const PERSISTENT_VOLUME_CLAIM: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "The claim's phase: Pending, Bound or Lost.",
    ),
    col("Volume", "string", "The volume bound to the claim."),
    col("Capacity", "string", "The bound volume's capacity."),
    col(
        "Access Modes",
        "string",
        "How the bound volume can be mounted: RWO, ROX, RWX, RWOP.",
    ),
    col(
        "StorageClass",
        "string",
        "The storage class the claim asks for.",
    ),
    col(
        "VolumeAttributesClass",
        "string",
        "The volume attributes class the claim asks for.",
    ),
    AGE,
    wide("VolumeMode", "string", "Filesystem or Block."),
];

pub(super) fn persistent_volume_claim(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let volume = s(&spec["volumeName"]);
    // Capacity and modes come from the bound volume, so only once there is one.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(&status["capacity"]["storage"]),
            access_modes(&status["accessModes"]),
        )
    };
    vec![
        name(obj),
        phase_or_terminating(obj).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class_name(obj).into(),
        unset_or(&spec["volumeAttributesClassName"]).into(),
        age(obj, now),
        unset_or(&spec["volumeMode"]).into(),
    ]
}

pub(super) const STORAGE_CLASS: &[Col] = &[
    NAME,
    col(
        "Provisioner",
        "string",
        "The volume plugin that provisions volumes of this class.",
    ),
    col(
        "ReclaimPolicy",
        "string",
        "Retain or Delete, for the volumes the class provisions.",
    ),
    col(
        "VolumeBindingMode",
        "string",
        "Immediate, or WaitForFirstConsumer to bind once a pod uses the claim.",
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        "Whether claims of this class may grow.",
    ),
    AGE,
];

/// The annotations marking the default class (GA and beta).
fn is_default_class(obj: &Value) -> bool {
    let a = &obj["metadata"]["annotations"];
    s(&a["storageclass.kubernetes.io/is-default-class"]) == "true"
        || s(&a["storageclass.beta.kubernetes.io/is-default-class"]) == "true"
}

pub(super) fn storage_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut name_cell = s(&obj["metadata"]["name"]).to_string();
    if is_default_class(obj) {
        name_cell.push_str(" (default)");
    }
    vec![
        name_cell.into(),
        s(&obj["provisioner"]).into(),
        obj["reclaimPolicy"].as_str().unwrap_or("Delete").into(),
        obj["volumeBindingMode"]
            .as_str()
            .unwrap_or("Immediate")
            .into(),
        obj["allowVolumeExpansion"]
            .as_bool()
            .unwrap_or(false)
            .into(),
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
    fn persistent_volume_cells() {
        let pv = json!({"metadata": {"name": "pv1"},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "ns", "name": "data"},
                     "storageClassName": "local-path", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            &persistent_volume(&pv, now())[1..9],
            &[
                json!("10Gi"),
                json!("RWO,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("ns/data"),
                json!("local-path"),
                json!("<unset>"),
                json!("")
            ]
        );
        let mut deleting = pv.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:00:00Z");
        assert_eq!(persistent_volume(&deleting, now())[4], json!("Terminating"));
    }

    #[test]
    fn claim_cells() {
        let pending = json!({"metadata": {"name": "data", "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
            "spec": {"storageClassName": "new"}, "status": {"phase": "Pending"}});
        assert_eq!(
            &persistent_volume_claim(&pending, now())[1..7],
            &[
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("old"),
                json!("<unset>")
            ]
        );
        let bound = json!({"metadata": {"name": "data"},
            "spec": {"volumeName": "pv1", "storageClassName": "local-path", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}});
        let row = persistent_volume_claim(&bound, now());
        assert_eq!(
            &row[1..6],
            &[
                json!("Bound"),
                json!("pv1"),
                json!("1Gi"),
                json!("RWO"),
                json!("local-path")
            ]
        );
        assert_eq!(row[8], json!("Filesystem"));
    }

    #[test]
    fn storage_class_cells() {
        let sc = json!({"metadata": {"name": "local-path",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            &storage_class(&sc, now())[..5],
            &[
                json!("local-path (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false)
            ]
        );
    }
}
