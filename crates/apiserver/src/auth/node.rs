//! The Node authorizer: kubelets (`system:node:<name>` in `system:nodes`) may do what
//! upstream's `system:node` rules allow, whatever the RBAC objects say, as upstream's
//! Node authorization mode. Upstream also confines each kubelet to the objects of its
//! own node (the secrets, configmaps and volumes of the pods bound to it, its own
//! Node and Lease) through a graph of pods; that confinement is not here yet.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::rbac::{bootstrap::roles::node_rules, rules};
use super::{Attributes, Authorizer, Decision, Rules, UserInfo};

pub const NODES_GROUP: &str = "system:nodes";
pub const NODE_USER_PREFIX: &str = "system:node:";

pub struct NodeAuthorizer {
    rules: Vec<PolicyRule>,
}

impl Default for NodeAuthorizer {
    fn default() -> Self {
        Self {
            rules: node_rules(),
        }
    }
}

/// The node a user is the kubelet of, if it is one.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.username.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if node_name(user).is_some() && self.rules.iter().any(|r| rules::allows(r, attrs)) {
            return Decision::Allow;
        }
        Decision::NoOpinion(String::new())
    }

    fn rules_for(&self, user: &UserInfo, _namespace: &str) -> Option<Rules> {
        Some(Rules {
            rules: if node_name(user).is_some() {
                self.rules.clone()
            } else {
                Vec::new()
            },
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelets_only() {
        let node = NodeAuthorizer::default();
        let status = Attributes {
            verb: "patch".into(),
            resource: "pods".into(),
            subresource: "status".into(),
            namespace: "default".into(),
            name: "web".into(),
            ..Default::default()
        };
        let kubelet = UserInfo::new("system:node:n1", vec![NODES_GROUP.into()]);
        assert_eq!(node.authorize(&kubelet, &status), Decision::Allow);
        let impostor = UserInfo::new("system:node:n1", vec![]);
        assert_eq!(
            node.authorize(&impostor, &status),
            Decision::NoOpinion(String::new())
        );
        let delete_ns = Attributes {
            verb: "delete".into(),
            resource: "namespaces".into(),
            name: "default".into(),
            ..Default::default()
        };
        assert_eq!(
            node.authorize(&kubelet, &delete_ns),
            Decision::NoOpinion(String::new())
        );
    }
}
