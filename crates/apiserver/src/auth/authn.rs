//! Authentication: client certificates (checked by the TLS layer, which puts the user
//! on the request), bearer tokens, and anonymous requests.

use std::sync::Arc;

use http::request::Parts;

use super::UserInfo;
use crate::error::ApiError;

/// Recognises one kind of bearer token.
pub trait TokenAuthenticator: Send + Sync {
    /// The user a token stands for, or `None` when this authenticator does not know it.
    fn authenticate(&self, token: &str) -> Option<UserInfo>;
}

/// The user of a request authenticated below HTTP (client certificate, in-process).
#[derive(Clone, Debug)]
pub struct Authenticated(pub UserInfo);

#[derive(Clone, Default)]
pub struct Authenticator {
    pub tokens: Vec<Arc<dyn TokenAuthenticator>>,
}

impl Authenticator {
    /// The user a bearer token stands for (TokenReview).
    pub fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens
            .iter()
            .find_map(|a| a.authenticate(token))
            .map(with_authenticated_group)
    }

    /// The request's user: from the connection (taken out of the request), else its
    /// bearer token (an unknown token is a 401, as upstream), else anonymous.
    pub fn authenticate(&self, parts: &mut Parts) -> Result<UserInfo, ApiError> {
        if let Some(Authenticated(user)) = parts.extensions.remove::<Authenticated>() {
            return Ok(with_authenticated_group(user));
        }
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Some(h) = header {
            let Some(token) = h
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|t| !t.is_empty())
            else {
                return Err(ApiError::unauthorized());
            };
            return self
                .tokens
                .iter()
                .find_map(|a| a.authenticate(token))
                .map(with_authenticated_group)
                .ok_or_else(ApiError::unauthorized);
        }
        Ok(UserInfo::anonymous())
    }
}

/// Every authenticated user is in `system:authenticated`, as upstream adds it.
fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == "system:authenticated") {
        user.groups.push("system:authenticated".into());
    }
    user
}

/// A fixed set of tokens (the admin token, node join tokens …).
#[derive(Default)]
pub struct StaticTokens(pub Vec<(String, UserInfo)>);

impl TokenAuthenticator for StaticTokens {
    fn authenticate(&self, token: &str) -> Option<UserInfo> {
        self.0
            .iter()
            .find(|(t, _)| constant_time_eq(t.as_bytes(), token.as_bytes()))
            .map(|(_, u)| u.clone())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
