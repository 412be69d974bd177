//! The per-resource decisions of the Node authorizer, as upstream's (reasons in its
//! words). `None` means the resource is not subdivided and the static rules decide.
//!
//! Nodes and pods are decided as upstream 1.33 with AuthorizeNodeWithSelectors (on by
//! default): a kubelet reads only its own Node, and lists and watches only the pods
//! its `spec.nodeName` field selector confines to it. Writes that upstream allows
//! here are confined to the node's own objects by NodeRestriction admission
//! (`admission/node_restriction`), which sees the objects.

use api::selectors::FieldOperator;

use super::graph::{Graph, Kind};
use crate::auth::{Attributes, Decision};

const LEASE_NAMESPACE: &str = "kube-node-lease";

fn allow() -> Option<Decision> {
    Some(Decision::Allow)
}

fn deny(reason: impl Into<String>) -> Option<Decision> {
    Some(Decision::NoOpinion(reason.into()))
}

fn no_relationship(node: &str) -> Option<Decision> {
    deny(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

pub fn confined(node: &str, a: &Attributes, g: &Graph) -> Option<Decision> {
    let ns = a.namespace.as_str();
    match (a.group.as_str(), a.resource.as_str()) {
        ("", "secrets") => read_namespaced(node, a, |n| g.secret_reaches(node, ns, n)),
        ("", "configmaps") => {
            read_namespaced(node, a, |n| g.named_by_pod_on(node, Kind::ConfigMap, ns, n))
        }
        ("", "persistentvolumeclaims") => {
            let reaches = |n: &str| g.named_by_pod_on(node, Kind::Claim, ns, n);
            if a.subresource == "status" {
                if !matches!(a.verb.as_str(), "update" | "patch") {
                    return deny("can only get/update/patch this type");
                }
                return related(node, a, reaches);
            }
            get_only(node, a, reaches)
        }
        ("", "persistentvolumes") => get_only(node, a, |n| g.volume_reaches(node, n)),
        ("storage.k8s.io", "volumeattachments") => {
            get_only(node, a, |n| g.attachment_reaches(node, n))
        }
        ("", "serviceaccounts") => {
            if a.verb != "create" || a.name.is_empty() {
                return deny("can only create tokens for individual service accounts");
            }
            if a.subresource != "token" {
                return deny("can only create token subresource of serviceaccount");
            }
            related(node, a, |n| {
                g.named_by_pod_on(node, Kind::ServiceAccount, ns, n)
            })
        }
        ("coordination.k8s.io", "leases") => lease(node, a),
        ("storage.k8s.io", "csinodes") => csi_node(node, a),
        ("", "nodes") => own_node(node, a),
        ("", "pods") => pod(node, a, g),
        _ => None,
    }
}

/// Decides by the graph; a request without a name cannot be related.
fn related(node: &str, a: &Attributes, reaches: impl Fn(&str) -> bool) -> Option<Decision> {
    if a.name.is_empty() {
        return deny("No Object name found");
    }
    if reaches(&a.name) {
        allow()
    } else {
        no_relationship(node)
    }
}

fn get_only(node: &str, a: &Attributes, reaches: impl Fn(&str) -> bool) -> Option<Decision> {
    if a.verb != "get" {
        return deny("can only get individual resources of this type");
    }
    if !a.subresource.is_empty() {
        return deny("cannot get subresource");
    }
    related(node, a, reaches)
}

/// get, list and watch of one named object (a list or watch of a single object by
/// name carries it), never of all.
fn read_namespaced(node: &str, a: &Attributes, reaches: impl Fn(&str) -> bool) -> Option<Decision> {
    if !matches!(a.verb.as_str(), "get" | "list" | "watch") {
        return deny("can only read resources of this type");
    }
    if !a.subresource.is_empty() {
        return deny("cannot read subresource");
    }
    if a.namespace.is_empty() {
        return deny("can only read namespaced object of this type");
    }
    related(node, a, reaches)
}

fn lease(node: &str, a: &Attributes) -> Option<Decision> {
    if !matches!(
        a.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return deny("can only get, create, update, patch, or delete a node lease");
    }
    if a.namespace != LEASE_NAMESPACE {
        return deny(format!(
            "can only access leases in the {LEASE_NAMESPACE:?} system namespace"
        ));
    }
    // A create carries no name to compare.
    if a.verb != "create" && a.name != node {
        return deny("can only access node lease with the same name as the requesting node");
    }
    allow()
}

fn csi_node(node: &str, a: &Attributes) -> Option<Decision> {
    if !matches!(
        a.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return deny("can only get, create, update, patch, or delete a CSINode");
    }
    if !a.subresource.is_empty() {
        return deny("cannot authorize CSINode subresources");
    }
    if a.verb != "create" && a.name != node {
        return deny("can only access CSINode with the same name as the requesting node");
    }
    allow()
}

/// A kubelet reads only its own Node (by name, or listed and watched with the
/// `metadata.name` field selector, which the attributes carry as the name), as
/// upstream 1.33 with AuthorizeNodeWithSelectors. It may create and write a Node and
/// its status; NodeRestriction admission confines that to its own.
fn own_node(node: &str, a: &Attributes) -> Option<Decision> {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => allow(),
        ("", "get" | "list" | "watch") if a.name == node => allow(),
        ("", "get" | "list" | "watch") if a.name.is_empty() => deny(format!(
            "node '{node}' cannot read all nodes, only its own Node object"
        )),
        ("", "get" | "list" | "watch") => deny(format!(
            "node '{node}' cannot read '{}', only its own Node object",
            a.name
        )),
        _ => deny(""),
    }
}

/// Whether the request's field selector demands `field=value`.
fn selects(a: &Attributes, field: &str, value: &str) -> bool {
    a.field_selector
        .iter()
        .any(|r| r.field == field && r.operator == FieldOperator::Equals && r.value == value)
}

/// Pods: reads as upstream 1.33 with AuthorizeNodeWithSelectors; mirror pod
/// creation, deletion, status and eviction are allowed here and confined to the
/// node's own pods by NodeRestriction admission.
fn pod(node: &str, a: &Attributes, g: &Graph) -> Option<Decision> {
    let bound_here = |n: &str| g.pod_node(&a.namespace, n) == Some(node);
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "get") => related(node, a, bound_here),
        // Its own pods by `spec.nodeName`, or one pod bound to it by name.
        ("", "list" | "watch") if selects(a, "spec.nodeName", node) => allow(),
        ("", "list" | "watch") if !a.name.is_empty() => related(node, a, bound_here),
        ("", "list" | "watch") => {
            deny("can only list/watch pods with spec.nodeName field selector")
        }
        ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
            allow()
        }
        _ => deny(""),
    }
}
