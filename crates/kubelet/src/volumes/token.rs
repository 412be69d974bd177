//! Service account tokens for projected volumes, from the TokenRequest API, bound to
//! the pod and cached per (account, audience, expiration) until 80% of their life has
//! passed (or a day), as upstream's token manager does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

struct Cached {
    token: String,
    fetched: Instant,
    ttl: Duration,
}

/// One pod's tokens.
#[derive(Default)]
pub struct Tokens {
    cache: HashMap<(String, String, i64), Cached>,
}

/// Whether a token fetched `age` ago and valid for `ttl` should be replaced.
pub fn needs_refresh(age: Duration, ttl: Duration) -> bool {
    age >= ttl.mul_f64(0.8) || age >= MAX_AGE
}

impl Tokens {
    pub async fn get(
        &mut self,
        client: &kube::Client,
        pod: &Pod,
        audience: Option<&str>,
        expiration: i64,
    ) -> Result<String, String> {
        let m = &pod.metadata;
        let ns = m.namespace.as_deref().unwrap_or("default");
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let audience = audience.unwrap_or_default().to_string();
        let key = (sa.clone(), audience.clone(), expiration);
        if let Some(c) = self.cache.get(&key)
            && !needs_refresh(c.fetched.elapsed(), c.ttl)
        {
            return Ok(c.token.clone());
        }
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    vec![]
                } else {
                    vec![audience]
                },
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: m.name.clone(),
                    uid: m.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let fetched = Instant::now();
        let got = Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .create_token_request(&sa, &PostParams::default(), &req)
            .await
            .map_err(|e| format!("failed to fetch token: {e}"))?;
        let status = got.status.ok_or("failed to fetch token: no status")?;
        let ttl = jiff::Timestamp::now()
            .until(status.expiration_timestamp.0)
            .ok()
            .and_then(|s| Duration::try_from(s).ok())
            .unwrap_or(Duration::from_secs(expiration.max(0) as u64));
        tracing::debug!(pod = ?m.name, ?ttl, "service account token fetched");
        self.cache.insert(
            key,
            Cached {
                token: status.token.clone(),
                fetched,
                ttl,
            },
        );
        Ok(status.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_after_eighty_percent_of_the_lifetime() {
        let ttl = Duration::from_secs(3607);
        assert!(!needs_refresh(Duration::from_secs(2885), ttl));
        assert!(needs_refresh(Duration::from_secs(2886), ttl));
        assert!(needs_refresh(MAX_AGE, Duration::from_secs(10 * 24 * 3600)));
    }
}
