//! The claims of a bound service account token, as upstream writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::users;

/// A named object with its UID, as the `kubernetes.io` claim refers to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

impl ObjectRef {
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uid: uid.into(),
        }
    }
}

/// The private `kubernetes.io` claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    #[serde(default)]
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod: Option<ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<ObjectRef>,
    #[serde(default)]
    pub serviceaccount: ObjectRef,
    /// For tokens whose lifetime the API server extended: when a client still using
    /// the token should be flagged as stale (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warnafter: Option<i64>,
}

/// A service account token's claims. Fields are in the order upstream's JSON has
/// them (alphabetical); times are seconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Upstream writes a list; a single string is accepted when reading (RFC 7519).
    #[serde(deserialize_with = "one_or_many", default)]
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<String>,
    #[serde(rename = "kubernetes.io", default)]
    pub kubernetes: KubernetesClaims,
    pub nbf: i64,
    pub sub: String,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(a)) => vec![a],
        Some(Aud::Many(a)) => a,
    })
}

/// The user a verified token stands for (upstream's `ServiceAccountInfo.UserInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountUser {
    /// `system:serviceaccount:<namespace>:<name>`.
    pub name: String,
    /// The service account's UID.
    pub uid: String,
    /// `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
    pub groups: Vec<String>,
    /// `authentication.kubernetes.io/{pod-name,pod-uid,node-name,node-uid,credential-id}`.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Claims {
    /// Claims for a token of service account `namespace/name` (UID `uid`) valid for
    /// `expiration_seconds` from `now`, with a fresh random `jti`, as upstream's
    /// TokenRequest issues them. Bind it with [`Claims::bound_to_pod`] and friends.
    pub fn new(
        issuer: &str,
        service_account: &ObjectRef,
        namespace: &str,
        audiences: Vec<String>,
        now: i64,
        expiration_seconds: i64,
    ) -> Self {
        Self {
            aud: audiences,
            exp: now.saturating_add(expiration_seconds),
            iat: now,
            iss: issuer.to_string(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            kubernetes: KubernetesClaims {
                namespace: namespace.to_string(),
                serviceaccount: service_account.clone(),
                ..Default::default()
            },
            nbf: now,
            sub: users::service_account(namespace, &service_account.name),
        }
    }

    pub fn bound_to_pod(mut self, pod: ObjectRef) -> Self {
        self.kubernetes.pod = Some(pod);
        self
    }

    pub fn bound_to_secret(mut self, secret: ObjectRef) -> Self {
        self.kubernetes.secret = Some(secret);
        self
    }

    pub fn bound_to_node(mut self, node: ObjectRef) -> Self {
        self.kubernetes.node = Some(node);
        self
    }

    /// Marks the token stale after `seconds` from its issue time (see
    /// [`KubernetesClaims::warnafter`]).
    pub fn warn_after(mut self, seconds: i64) -> Self {
        self.kubernetes.warnafter = Some(self.iat.saturating_add(seconds));
        self
    }

    /// The user this token authenticates as.
    pub fn user(&self) -> ServiceAccountUser {
        let k = &self.kubernetes;
        let mut extra = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            extra.insert(
                format!("authentication.kubernetes.io/{key}"),
                vec![value.to_string()],
            );
        };
        if let Some(pod) = &k.pod {
            put("pod-name", &pod.name);
            put("pod-uid", &pod.uid);
        }
        if let Some(node) = &k.node {
            put("node-name", &node.name);
            put("node-uid", &node.uid);
        }
        if let Some(jti) = &self.jti {
            put("credential-id", &format!("JTI={jti}"));
        }
        ServiceAccountUser {
            name: users::service_account(&k.namespace, &k.serviceaccount.name),
            uid: k.serviceaccount.uid.clone(),
            groups: users::service_account_groups(&k.namespace),
            extra,
        }
    }
}
