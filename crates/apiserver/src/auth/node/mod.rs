//! The Node authorizer: kubelets (`system:node:<name>` in `system:nodes`) may do what
//! upstream's `system:node` rules allow, confined as upstream's Node authorization
//! mode to the objects of their own node. Secrets, configmaps, claims, volumes,
//! VolumeAttachments and service account tokens are reachable only through a pod bound
//! to the node (the graph, `graph.rs`, kept current by watches, `sync.rs`); Nodes are
//! read and Leases and CSINodes used only by the node's own name; pods are checked per
//! verb and field selector (`decide.rs`). Writes the request does not let it judge
//! (which Node, which pod) are NodeRestriction admission's (`admission/
//! node_restriction`). Everything else follows the static rules.

mod decide;
mod graph;
mod refs;
mod sync;

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::PolicyRule;
use parking_lot::RwLock;

pub use graph::Graph;
pub(crate) use graph::Kind;
pub(crate) use refs::pod as pod_refs;

use super::rbac::{bootstrap::roles::node_rules, rules};
use super::{Attributes, Authorizer, Decision, Rules, UserInfo};
use crate::state::ApiState;

pub const NODES_GROUP: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";

pub struct NodeAuthorizer {
    rules: Vec<PolicyRule>,
    graph: Arc<RwLock<Graph>>,
}

impl Default for NodeAuthorizer {
    fn default() -> Self {
        Self {
            rules: node_rules(),
            graph: Default::default(),
        }
    }
}

/// The node a user is the kubelet of, if it is one.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.username.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

impl NodeAuthorizer {
    /// The graph decisions read (for the watches that fill it, and tests).
    pub fn graph(&self) -> &Arc<RwLock<Graph>> {
        &self.graph
    }

    fn static_rules(&self, attrs: &Attributes) -> Decision {
        if self.rules.iter().any(|r| rules::allows(r, attrs)) {
            Decision::Allow
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        let Some(node) = node_name(user) else {
            return Decision::NoOpinion(String::new());
        };
        if !attrs.is_resource_request() {
            return self.static_rules(attrs);
        }
        match decide::confined(node, attrs, &self.graph.read()) {
            Some(d) => d,
            None => self.static_rules(attrs),
        }
    }

    /// Upstream's answer: a kubelet's rights depend on the graph, so they cannot be
    /// listed.
    fn rules_for(&self, user: &UserInfo, _namespace: &str) -> Option<Rules> {
        let mut r = Rules::default();
        if node_name(user).is_some() {
            r.incomplete = true;
            r.errors
                .push("node authorizer does not support user rule resolution".into());
        }
        Some(r)
    }
}

/// Fills the Node authorizer's graph before the server serves and keeps it current;
/// does nothing when Node is not an authorization mode.
pub async fn start(state: &Arc<ApiState>) -> crate::error::Result<()> {
    match &state.node {
        Some(node) => sync::start(state, node.graph.clone()).await,
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
