//! Service account tokens: issuing them (the TokenRequest API) and accepting them as
//! bearer tokens, signed with the cluster's service account key.

use pki::jwt::{Claims, DEFAULT_ISSUER, ObjectRef, ServiceAccountKey, TokenVerifier};

use super::{TokenAuthenticator, UserInfo};

/// Issues and verifies the cluster's service account tokens.
#[derive(Clone)]
pub struct ServiceAccountTokens {
    key: ServiceAccountKey,
    verifier: TokenVerifier,
}

impl ServiceAccountTokens {
    pub fn new(key: ServiceAccountKey) -> Self {
        let verifier = TokenVerifier::new(
            vec![key.public_key()],
            vec![DEFAULT_ISSUER.to_string()],
            vec![DEFAULT_ISSUER.to_string()],
        );
        Self { key, verifier }
    }

    /// A signed token for `namespace/name` (uid `uid`), optionally bound to a pod.
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: Vec<String>,
        expiration_seconds: i64,
        pod: Option<ObjectRef>,
    ) -> Result<(String, i64), String> {
        let now = jiff::Timestamp::now().as_second();
        let audiences = if audiences.is_empty() {
            vec![DEFAULT_ISSUER.to_string()]
        } else {
            audiences
        };
        let mut claims = Claims::new(
            DEFAULT_ISSUER,
            &ObjectRef::new(name, uid),
            namespace,
            audiences,
            now,
            expiration_seconds,
        );
        if let Some(p) = pod {
            claims = claims.bound_to_pod(p);
        }
        let exp = claims.exp;
        self.key
            .sign(&claims)
            .map(|t| (t, exp))
            .map_err(|e| e.to_string())
    }
}

impl TokenAuthenticator for ServiceAccountTokens {
    fn authenticate(&self, token: &str) -> Option<UserInfo> {
        let claims = self.verifier.verify(token).ok()?;
        let user = claims.user();
        Some(UserInfo {
            username: user.name,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
        })
    }
}
