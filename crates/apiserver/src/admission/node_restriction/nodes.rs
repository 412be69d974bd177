//! What a kubelet may write of its Node, Lease, CSINode and claims' status.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Operation, Request, forbidden, object_name, same, str_at};
use crate::error::ApiError;

const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Labels a kubelet sets itself (upstream's `kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// Label namespaces a kubelet may use, with their subdomains.
const KUBELET_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];
/// Labels only an administrator sets, so workloads can trust them to pick nodes.
const RESTRICTED_NAMESPACE: &str = "node-restriction.kubernetes.io";

fn in_namespace(namespace: &str, ns: &str) -> bool {
    namespace == ns
        || namespace
            .strip_suffix(ns)
            .is_some_and(|rest| rest.ends_with('.'))
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn is_kubelet_label(key: &str) -> bool {
    let ns = label_namespace(key);
    KUBELET_LABELS.contains(&key) || KUBELET_NAMESPACES.iter().any(|k| in_namespace(ns, k))
}

/// The keys of labels added, removed or changed.
fn modified<'a>(new: &'a Map<String, Value>, old: &'a Map<String, Value>) -> BTreeSet<&'a str> {
    new.keys()
        .chain(old.keys())
        .filter(|k| new.get(*k) != old.get(*k))
        .map(String::as_str)
        .collect()
}

/// Of `keys`, those a node may not set: under node-restriction.kubernetes.io, or
/// other kubernetes.io and k8s.io labels outside the kubelet's.
fn forbidden_labels(keys: BTreeSet<&str>) -> Vec<&str> {
    keys.into_iter()
        .filter(|k| {
            let ns = label_namespace(k);
            let kubernetes = ["kubernetes.io", "k8s.io"]
                .iter()
                .any(|d| in_namespace(ns, d));
            in_namespace(ns, RESTRICTED_NAMESPACE) || (kubernetes && !is_kubelet_label(k))
        })
        .collect()
}

fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

pub(super) fn node(node: &str, req: &Request<'_>) -> Result<(), ApiError> {
    let requested = object_name(req);
    if requested != node {
        return Err(forbidden(
            req,
            format!("node {node:?} is not allowed to modify node {requested:?}"),
        ));
    }
    let new = &*req.object;
    let config_source = new.pointer("/spec/configSource").filter(|c| !c.is_null());
    match (req.operation, req.old) {
        (Operation::Create, _) => {
            // (Upstream's message says pods.)
            if config_source.is_some() {
                return Err(forbidden(
                    req,
                    format!(
                        "node {node:?} is not allowed to create pods with a non-nil configSource"
                    ),
                ));
            }
            let (new_labels, none) = (labels(new), Map::new());
            let refused = forbidden_labels(modified(&new_labels, &none));
            if !refused.is_empty() {
                return Err(forbidden(
                    req,
                    format!(
                        "node {node:?} is not allowed to set the following labels: {}",
                        refused.join(", ")
                    ),
                ));
            }
        }
        (Operation::Update, Some(old)) => {
            if config_source.is_some() && config_source != old.pointer("/spec/configSource") {
                return Err(forbidden(
                    req,
                    format!(
                        "node {node:?} is not allowed to update configSource to a new non-nil configSource"
                    ),
                ));
            }
            if !same(new.pointer("/spec/taints"), old.pointer("/spec/taints")) {
                return Err(forbidden(
                    req,
                    format!("node {node:?} is not allowed to modify taints"),
                ));
            }
            let (new_labels, old_labels) = (labels(new), labels(old));
            let refused = forbidden_labels(modified(&new_labels, &old_labels));
            if !refused.is_empty() {
                return Err(forbidden(
                    req,
                    format!("is not allowed to modify labels: {}", refused.join(", ")),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn lease(node: &str, req: &Request<'_>) -> Result<(), ApiError> {
    if req.namespace != Some(LEASE_NAMESPACE) {
        return Err(forbidden(
            req,
            format!("can only access leases in the {LEASE_NAMESPACE:?} system namespace"),
        ));
    }
    same_name(
        node,
        req,
        "can only access node lease with the same name as the requesting node",
    )
}

pub(super) fn csi_node(node: &str, req: &Request<'_>) -> Result<(), ApiError> {
    same_name(
        node,
        req,
        "can only access CSINode with the same name as the requesting node",
    )
}

fn same_name(node: &str, req: &Request<'_>, why: &str) -> Result<(), ApiError> {
    if str_at(req.object, "/metadata/name") != node {
        return Err(forbidden(req, why));
    }
    Ok(())
}

/// A claim's status as a node may not change it: everything but the capacity, the
/// conditions and (RecoverVolumeExpansionFailure, on in 1.33) the allocated
/// resources and their statuses; resourceVersion and managedFields do not count.
fn fixed_part(claim: &Value) -> Value {
    let mut c = claim.clone();
    if let Some(meta) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    if let Some(status) = c.get_mut("status").and_then(Value::as_object_mut) {
        for f in [
            "capacity",
            "conditions",
            "allocatedResources",
            "allocatedResourceStatuses",
        ] {
            status.remove(f);
        }
    }
    c
}

pub(super) fn claim_status(node: &str, req: &Request<'_>) -> Result<(), ApiError> {
    let (Operation::Update, Some(old)) = (req.operation, req.old) else {
        let op = super::operation(req.operation);
        return Err(forbidden(req, format!("unexpected operation {op:?}")));
    };
    let (old, new) = (fixed_part(old), fixed_part(req.object));
    if old != new {
        // Upstream appends a Go diff of the two claims; k8rs names the fields.
        let changed: Vec<String> = changed_fields(&old, &new, String::new());
        return Err(forbidden(
            req,
            format!(
                "node {node:?} is not allowed to update fields other than status.capacity and status.conditions: {}",
                changed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The dotted paths where two objects differ, down to the first non-object values.
fn changed_fields(a: &Value, b: &Value, at: String) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .filter(|k| !same(x.get(*k), y.get(*k)))
                .flat_map(|k| {
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    changed_fields(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        path,
                    )
                })
                .collect()
        }
        _ => vec![at],
    }
}
