//! Who is calling (authentication) and whether they may (authorization). Requests are
//! authenticated by client certificate or bearer token; authorization plugs in behind
//! the [`Authorizer`] trait (everything authenticated is allowed until RBAC lands).

mod authn;
mod service_accounts;

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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

/// Decides whether a user may do something.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision;
}

/// Allows every authenticated user everything (until RBAC is in place).
pub struct AllowAuthenticated;

impl Authorizer for AllowAuthenticated {
    fn authorize(&self, user: &UserInfo, _attrs: &Attributes) -> Decision {
        if user.is_anonymous() {
            Decision::Deny("anonymous requests are not allowed".into())
        } else {
            Decision::Allow
        }
    }
}
