//! NodeRestriction admission, as upstream's plugin: a kubelet (`system:node:<name>`
//! in `system:nodes`) may write only what belongs to its node. The Node authorizer
//! lets kubelets create, update and delete pods, Nodes, Leases and CSINodes, and ask
//! for evictions and tokens, without knowing which object a request touches; this
//! plugin checks the objects themselves, with upstream's messages (403 Forbidden):
//!
//! - pods: only mirror pods (annotation `kubernetes.io/config.mirror`) bound to the
//!   node, owned by its Node alone, naming no service account, secret, configmap,
//!   cluster trust bundle or claim; deletion, status updates (never the labels) and
//!   evictions only of pods bound to it;
//! - Nodes (`nodes.rs`): only its own, with no labels under
//!   `node-restriction.kubernetes.io/` nor `kubernetes.io`/`k8s.io` labels outside
//!   the kubelet's set changed, no taints changed on update, no config source;
//! - Leases and CSINodes: only the ones named after the node; PVCs: only
//!   `status.capacity`, `status.conditions` and the expansion fields of the status;
//! - service account tokens: only bound to a pod (by UID) that runs on the node.
//!
//! Generic ephemeral volumes count as claims here (upstream's pod check names only
//! `persistentVolumeClaim` volumes): the claim they make is one more object the Node
//! authorizer would then let the node read.

mod nodes;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use store::Store;

use api::ResourceInfo;

use super::{Operation, Plugin, Request};
use crate::auth::UserInfo;
use crate::auth::node::{Kind, NODE_USER_PREFIX, NODES_GROUP, pod_refs};
use crate::error::ApiError;

/// Marks a mirror pod, the API's copy of a kubelet's static pod.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

pub struct NodeRestriction {
    pub store: Arc<dyn Store>,
    pods: ResourceInfo,
}

impl NodeRestriction {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let pods = api::builtin::resources()
            .into_iter()
            .find(|r| r.group.is_empty() && r.plural == "pods")
            .expect("pods are built in");
        Self { store, pods }
    }

    /// The stored object at `key`, or `None`.
    async fn stored(&self, key: &str) -> Result<Option<Value>, ApiError> {
        match self.store.get(key).await {
            Ok(Some(kv)) => crate::registry::decode(&kv).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    /// The pod a node names, or upstream's NotFound.
    async fn pod(&self, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.stored(&format!("/registry/pods/{ns}/{name}"))
            .await?
            .ok_or_else(|| ApiError::not_found(&self.pods, name))
    }
}

/// Upstream's node identity: `system:node:<name>` in `system:nodes` is a node, its
/// name possibly empty (which is refused).
fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.username.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

/// The name upstream's errors give the object: the request's, else the object's (or
/// its generateName), else `Unknown`.
fn object_name(req: &Request<'_>) -> String {
    let meta = &req.object["metadata"];
    [&meta["name"], &meta["generateName"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .unwrap_or("Unknown")
        .to_string()
}

/// Upstream's `admission.NewForbidden`.
fn forbidden(req: &Request<'_>, why: impl AsRef<str>) -> ApiError {
    ApiError::forbidden(req.info, &object_name(req), why.as_ref())
}

fn operation(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The list at `pointer` (empty when absent).
fn items_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Whether two JSON values are equal, a missing field, `null`, `[]` and `{}` all
/// counting as unset (upstream's semantic equality of nil and empty).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    let unset = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    };
    (unset(a) && unset(b)) || a == b
}

#[async_trait]
impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    /// Creates and updates (upstream checks them in its mutating phase, before
    /// validation).
    async fn admit(&self, req: &mut Request<'_>) -> Result<(), ApiError> {
        if req.operation == Operation::Delete {
            return Ok(());
        }
        self.check(req).await
    }

    /// Deletes (the registry asks only validating plugins about them).
    async fn validate(&self, req: &Request<'_>) -> Result<(), ApiError> {
        if req.operation != Operation::Delete {
            return Ok(());
        }
        self.check(req).await
    }
}

impl NodeRestriction {
    async fn check(&self, req: &Request<'_>) -> Result<(), ApiError> {
        let Some(node) = node_identity(req.user) else {
            return Ok(());
        };
        if node.is_empty() {
            let user = &req.user.username;
            return Err(forbidden(
                req,
                format!("could not determine node from user {user:?}"),
            ));
        }
        let sub = req.subresource.unwrap_or_default();
        match (req.info.group.as_str(), req.info.plural.as_str()) {
            ("", "pods") => match sub {
                "" => self.pod_write(node, req).await,
                "status" => pod_status(node, req),
                "eviction" => self.eviction(node, req).await,
                other => Err(forbidden(
                    req,
                    format!(
                        "unexpected pod subresource {other:?}, only 'status' and 'eviction' are allowed"
                    ),
                )),
            },
            ("", "nodes") => nodes::node(node, req),
            ("", "persistentvolumeclaims") if sub == "status" => nodes::claim_status(node, req),
            ("", "persistentvolumeclaims") => Err(forbidden(req, "may only update PVC status")),
            ("", "serviceaccounts") => self.token(node, req).await,
            ("coordination.k8s.io", "leases") => nodes::lease(node, req),
            ("storage.k8s.io", "csinodes") => nodes::csi_node(node, req),
            _ => Ok(()),
        }
    }

    async fn pod_write(&self, node: &str, req: &Request<'_>) -> Result<(), ApiError> {
        match req.operation {
            Operation::Create => self.mirror_pod(node, req).await,
            // The object of a delete is the stored pod.
            Operation::Delete if str_at(req.object, "/spec/nodeName") != node => Err(forbidden(
                req,
                format!("node {node:?} can only delete pods with spec.nodeName set to itself"),
            )),
            Operation::Delete => Ok(()),
            op => Err(forbidden(
                req,
                format!(
                    "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                    operation(op)
                ),
            )),
        }
    }

    async fn mirror_pod(&self, node: &str, req: &Request<'_>) -> Result<(), ApiError> {
        let pod = &*req.object;
        let refuse = |why: String| Err(forbidden(req, why));
        if pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(MIRROR_ANNOTATION))
            .is_none()
        {
            return refuse(format!(
                "pod does not have {MIRROR_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
            ));
        }
        if str_at(pod, "/spec/nodeName") != node {
            return refuse(format!(
                "node {node:?} can only create pods with spec.nodeName set to itself"
            ));
        }
        let owners = items_at(pod, "/metadata/ownerReferences");
        let owner = match owners {
            [] => {
                return refuse(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                ));
            }
            [owner] => owner,
            _ => {
                return refuse(format!(
                    "node {node:?} can only create pods with a single owner reference set to itself"
                ));
            }
        };
        if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
            return refuse(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ));
        }
        if owner["controller"] != true {
            return refuse(format!(
                "node {node:?} can only create pods with a controller owner reference set to itself"
            ));
        }
        if owner["blockOwnerDeletion"] == true {
            return refuse(format!(
                "node {node:?} must not set blockOwnerDeletion on an owner reference"
            ));
        }
        let Some(stored) = self.stored(&format!("/registry/minions/{node}")).await? else {
            let nodes = api::builtin::resources()
                .into_iter()
                .find(|r| r.group.is_empty() && r.plural == "nodes")
                .expect("nodes are built in");
            return Err(ApiError::not_found(&nodes, node));
        };
        let (want, have) = (str_at(owner, "/uid"), str_at(&stored, "/metadata/uid"));
        if want != have {
            return refuse(format!(
                "node {node} UID mismatch: expected {want} got {have}"
            ));
        }
        if !str_at(pod, "/spec/serviceAccountName").is_empty() {
            return refuse(format!(
                "node {node:?} can not create pods that reference a service account"
            ));
        }
        let (_, named) = pod_refs(pod);
        for (kind, what) in [(Kind::Secret, "secrets"), (Kind::ConfigMap, "configmaps")] {
            if named.iter().any(|(k, _)| *k == kind) {
                return refuse(format!(
                    "node {node:?} can not create pods that reference {what}"
                ));
            }
        }
        let volumes = items_at(pod, "/spec/volumes");
        let bundles = volumes.iter().any(|v| {
            items_at(v, "/projected/sources")
                .iter()
                .any(|s| s.get("clusterTrustBundle").is_some())
        });
        if bundles {
            return refuse(format!(
                "node {node:?} can not create pods that reference clustertrustbundles"
            ));
        }
        if named.iter().any(|(k, _)| *k == Kind::Claim) {
            return refuse(format!(
                "node {node:?} can not create pods that reference persistentvolumeclaims"
            ));
        }
        Ok(())
    }

    async fn eviction(&self, node: &str, req: &Request<'_>) -> Result<(), ApiError> {
        if req.operation != Operation::Create {
            let op = operation(req.operation);
            return Err(forbidden(req, format!("unexpected operation {op}")));
        }
        // The handler names the Eviction after the pod of its path.
        let name = str_at(req.object, "/metadata/name");
        if name.is_empty() {
            return Err(forbidden(req, "could not determine pod from request data"));
        }
        let pod = self.pod(req.namespace.unwrap_or_default(), name).await?;
        if str_at(&pod, "/spec/nodeName") != node {
            return Err(forbidden(
                req,
                format!("node {node} can only evict pods with spec.nodeName set to itself"),
            ));
        }
        Ok(())
    }

    /// TokenRequests (the handler names the request after its service account).
    async fn token(&self, node: &str, req: &Request<'_>) -> Result<(), ApiError> {
        if req.operation != Operation::Create || req.subresource != Some("token") {
            return Ok(());
        }
        let r = req
            .object
            .pointer("/spec/boundObjectRef")
            .unwrap_or(&Value::Null);
        if r["apiVersion"] != "v1" || r["kind"] != "Pod" || str_at(r, "/name").is_empty() {
            return Err(forbidden(req, "node requested token not bound to a pod"));
        }
        let uid = str_at(r, "/uid");
        if uid.is_empty() {
            return Err(forbidden(
                req,
                "node requested token with a pod binding without a uid",
            ));
        }
        let pod = self
            .pod(req.namespace.unwrap_or_default(), str_at(r, "/name"))
            .await?;
        if str_at(&pod, "/metadata/uid") != uid {
            return Err(forbidden(
                req,
                format!(
                    "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        if str_at(&pod, "/spec/nodeName") != node {
            return Err(forbidden(
                req,
                "node requested token bound to a pod scheduled on a different node",
            ));
        }
        Ok(())
    }
}

fn pod_status(node: &str, req: &Request<'_>) -> Result<(), ApiError> {
    let (Operation::Update, Some(old)) = (req.operation, req.old) else {
        let op = operation(req.operation);
        return Err(forbidden(req, format!("unexpected operation {op:?}")));
    };
    if str_at(old, "/spec/nodeName") != node {
        return Err(forbidden(
            req,
            format!(
                "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
            ),
        ));
    }
    let labels = |v: &Value| v.pointer("/metadata/labels").cloned();
    if !same(labels(old).as_ref(), labels(req.object).as_ref()) {
        return Err(forbidden(
            req,
            format!("node {node:?} cannot update labels through pod status"),
        ));
    }
    // Which claim each entry names; upstream compares only those.
    let claims = |v: &Value| -> Vec<(Value, Value)> {
        items_at(v, "/status/resourceClaimStatuses")
            .iter()
            .map(|s| (s["name"].clone(), s["resourceClaimName"].clone()))
            .collect()
    };
    // "statues" is upstream's spelling.
    if claims(old) != claims(req.object) {
        return Err(forbidden(
            req,
            format!("node {node:?} cannot update resource claim statues"),
        ));
    }
    Ok(())
}
