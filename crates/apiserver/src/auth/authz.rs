//! The authorizer chain `--authorization-mode` builds, as upstream's union authorizer:
//! members of `system:masters` are allowed everything first (upstream's privileged
//! group), then each mode is asked in order; the first to allow or deny decides, and
//! a request no mode allows is forbidden with the modes' reasons.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::PolicyRule;

use serde_json::json;

use super::{Attributes, Authorizer, Decision, UserInfo};
use crate::error::ApiError;

/// The group whose members may do everything, whatever the policy says.
pub const PRIVILEGED_GROUP: &str = "system:masters";

/// One `--authorization-mode` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationMode {
    AlwaysAllow,
    AlwaysDeny,
    Node,
    Rbac,
}

#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error(
        "authorization-mode {0:?} is not supported (supported: AlwaysAllow, AlwaysDeny, Node, RBAC)"
    )]
    Unsupported(String),
    #[error("authorization-mode {0:?} is given more than once")]
    Duplicate(String),
    #[error("at least one authorization-mode must be given")]
    Empty,
}

impl AuthorizationMode {
    /// Parses upstream's comma-separated list (`Node,RBAC`).
    pub fn parse_list(s: &str) -> Result<Vec<Self>, ModeError> {
        let mut modes = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let mode = match name {
                "AlwaysAllow" => Self::AlwaysAllow,
                "AlwaysDeny" => Self::AlwaysDeny,
                "Node" => Self::Node,
                "RBAC" => Self::Rbac,
                other => return Err(ModeError::Unsupported(other.to_string())),
            };
            if modes.contains(&mode) {
                return Err(ModeError::Duplicate(name.to_string()));
            }
            modes.push(mode);
        }
        if modes.is_empty() {
            return Err(ModeError::Empty);
        }
        Ok(modes)
    }
}

/// What a user may do in a namespace, as SelfSubjectRulesReview reports it.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    pub rules: Vec<PolicyRule>,
    /// Some rules could not be read (a binding names a missing role).
    pub incomplete: bool,
    pub errors: Vec<String>,
}

struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _: &UserInfo, _: &Attributes) -> Decision {
        Decision::Allow
    }

    fn rules_for(&self, _: &UserInfo, _: &str) -> Option<Rules> {
        Some(Rules {
            rules: everything(),
            ..Default::default()
        })
    }
}

struct AlwaysDeny;

impl Authorizer for AlwaysDeny {
    fn authorize(&self, _: &UserInfo, _: &Attributes) -> Decision {
        Decision::Deny("Everything is forbidden.".into())
    }
}

/// `*` on every resource and every path.
fn everything() -> Vec<PolicyRule> {
    let all = || Some(vec!["*".to_string()]);
    vec![
        PolicyRule {
            verbs: vec!["*".into()],
            api_groups: all(),
            resources: all(),
            ..Default::default()
        },
        PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: all(),
            ..Default::default()
        },
    ]
}

/// The privileged group, then every configured mode in order.
pub struct Chain {
    members: Vec<Arc<dyn Authorizer>>,
}

impl Chain {
    /// The chain of `modes`; `node` and `rbac` serve the modes of those names.
    pub fn new(
        modes: &[AuthorizationMode],
        node: Arc<dyn Authorizer>,
        rbac: Arc<dyn Authorizer>,
    ) -> Self {
        let members = modes
            .iter()
            .map(|m| match m {
                AuthorizationMode::AlwaysAllow => Arc::new(AlwaysAllow) as Arc<dyn Authorizer>,
                AuthorizationMode::AlwaysDeny => Arc::new(AlwaysDeny),
                AuthorizationMode::Node => node.clone(),
                AuthorizationMode::Rbac => rbac.clone(),
            })
            .collect();
        Self { members }
    }
}

fn privileged(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == PRIVILEGED_GROUP)
}

impl Authorizer for Chain {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        if privileged(user) {
            return Decision::Allow;
        }
        let mut reasons = String::new();
        for m in &self.members {
            match m.authorize(user, attrs) {
                Decision::Allow => return Decision::Allow,
                Decision::Deny(r) => return Decision::Deny(r),
                Decision::NoOpinion(r) if !r.is_empty() => {
                    if !reasons.is_empty() {
                        reasons.push('\n');
                    }
                    reasons.push_str(&r);
                }
                Decision::NoOpinion(_) => {}
            }
        }
        Decision::NoOpinion(reasons)
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> Option<Rules> {
        if privileged(user) {
            return Some(Rules {
                rules: everything(),
                ..Default::default()
            });
        }
        let mut all = Rules::default();
        for m in &self.members {
            match m.rules_for(user, namespace) {
                Some(r) => {
                    all.rules.extend(r.rules);
                    all.incomplete |= r.incomplete;
                    all.errors.extend(r.errors);
                }
                None => all.incomplete = true,
            }
        }
        Some(all)
    }
}

/// The 403 upstream answers a request no authorizer allowed with.
pub fn forbidden(user: &UserInfo, attrs: &Attributes, reason: &str) -> ApiError {
    let mut msg = match &attrs.path {
        Some(path) => format!(
            "User {:?} cannot {} path {path:?}",
            user.username, attrs.verb
        ),
        None => {
            let what = if attrs.subresource.is_empty() {
                attrs.resource.clone()
            } else {
                format!("{}/{}", attrs.resource, attrs.subresource)
            };
            let scope = if attrs.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace {:?}", attrs.namespace)
            };
            format!(
                "User {:?} cannot {} resource {what:?} in API group {:?} {scope}",
                user.username, attrs.verb, attrs.group
            )
        }
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    if attrs.resource.is_empty() {
        return ApiError::new(403, "Forbidden", format!("forbidden: {msg}"))
            .with_details(json!({}));
    }
    let gr = if attrs.group.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}.{}", attrs.resource, attrs.group)
    };
    let mut details = json!({"kind": attrs.resource});
    if !attrs.name.is_empty() {
        details["name"] = json!(attrs.name);
    }
    if !attrs.group.is_empty() {
        details["group"] = json!(attrs.group);
    }
    let msg = if attrs.name.is_empty() {
        format!("{gr} is forbidden: {msg}")
    } else {
        format!("{gr} {:?} is forbidden: {msg}", attrs.name)
    };
    ApiError::new(403, "Forbidden", msg).with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_upstream_flag() {
        use AuthorizationMode::*;
        assert_eq!(
            AuthorizationMode::parse_list("Node,RBAC").unwrap(),
            vec![Node, Rbac]
        );
        assert_eq!(
            AuthorizationMode::parse_list("AlwaysAllow").unwrap(),
            vec![AlwaysAllow]
        );
        assert!(AuthorizationMode::parse_list("ABAC").is_err());
        assert!(AuthorizationMode::parse_list("RBAC,RBAC").is_err());
        assert!(AuthorizationMode::parse_list("").is_err());
    }

    #[test]
    fn masters_bypass_and_no_opinion_is_not_allow() {
        let deny_all: Arc<dyn Authorizer> = Arc::new(AlwaysDeny);
        let chain = Chain::new(&[AuthorizationMode::Node], deny_all.clone(), deny_all);
        let attrs = Attributes::non_resource("get", "/x");
        let admin = UserInfo::new("a", vec![PRIVILEGED_GROUP.into()]);
        assert_eq!(chain.authorize(&admin, &attrs), Decision::Allow);
        let bob = UserInfo::new("bob", vec![]);
        assert!(matches!(chain.authorize(&bob, &attrs), Decision::Deny(_)));
    }

    #[test]
    fn forbidden_messages_as_upstream() {
        let alice = UserInfo::new("alice", vec![]);
        let list = Attributes {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: "default".into(),
            ..Default::default()
        };
        assert_eq!(
            forbidden(&alice, &list, "").message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let logs = Attributes {
            verb: "get".into(),
            group: "apps".into(),
            resource: "deployments".into(),
            subresource: "scale".into(),
            name: "web".into(),
            ..Default::default()
        };
        assert_eq!(
            forbidden(&alice, &logs, "").message,
            r#"deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" in API group "apps" at the cluster scope"#
        );
        assert_eq!(
            forbidden(&alice, &Attributes::non_resource("get", "/metrics"), "").message,
            r#"forbidden: User "alice" cannot get path "/metrics""#
        );
    }
}
