//! Who is calling (authentication) and whether they may (authorization). Requests are
//! authenticated by client certificate or bearer token (or are anonymous), may act as
//! another user (impersonation), and are authorized by the chain of
//! `--authorization-mode`s behind the [`Authorizer`] trait: `system:masters` first,
//! then Node, RBAC or AlwaysAllow, the first to allow winning, as upstream's union.

mod authn;
mod authz;
pub mod impersonate;
pub mod node;
pub mod rbac;
mod service_accounts;

pub use authz::{AuthorizationMode, Chain, ModeError, PRIVILEGED_GROUP, Rules, forbidden};

use serde::Serialize;

pub use authn::{Authenticated, Authenticator, StaticTokens, TokenAuthenticator};
pub use service_accounts::ServiceAccountTokens;

/// An authenticated user, as upstream's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn new(username: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            username: username.into(),
            groups,
            ..Default::default()
        }
    }

    /// The server itself (bootstrap and in-process components).
    pub fn system() -> Self {
        Self::new(
            "system:apiserver",
            vec!["system:masters".into(), "system:authenticated".into()],
        )
    }

    pub fn anonymous() -> Self {
        Self::new("system:anonymous", vec!["system:unauthenticated".into()])
    }

    pub fn is_anonymous(&self) -> bool {
        self.username == "system:anonymous"
    }
}

/// What a request wants to do, for authorization.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Set for non-resource requests such as `/healthz`.
    pub path: Option<String>,
    /// The field selector of a list, watch or deletecollection, as upstream's
    /// AuthorizeWithSelectors gives authorizers (empty when absent or unparsable).
    pub field_selector: Vec<api::selectors::FieldRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused outright (no later authorizer is asked).
    Deny(String),
    /// Neither allowed nor refused, with a reason (often empty); the next authorizer
    /// is asked, and a request no one allows is forbidden.
    NoOpinion(String),
}

impl Attributes {
    /// A request on a path outside the resource API (`/healthz`, `/api`, …).
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Self {
            verb: verb.to_string(),
            path: Some(path.to_string()),
            ..Default::default()
        }
    }

    pub fn is_resource_request(&self) -> bool {
        self.path.is_none()
    }
}

/// Decides whether a user may do something.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision;

    /// What `user` may do in `namespace` (SelfSubjectRulesReview); `None` when this
    /// authorizer cannot tell.
    fn rules_for(&self, _user: &UserInfo, _namespace: &str) -> Option<Rules> {
        None
    }
}
