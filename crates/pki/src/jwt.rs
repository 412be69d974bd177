//! Service account tokens: JWTs signed with ES256 (ECDSA P-256, SHA-256), which
//! upstream accepts for `--service-account-signing-key-file` like RS256; ring cannot
//! generate RSA keys. Header `{"alg":"ES256","kid":…}` with upstream's key ID (the
//! unpadded base64url SHA-256 of the public key's DER `SubjectPublicKeyInfo`), claims
//! as upstream's bound tokens ([`Claims`]). Verification follows upstream's JWT
//! authenticator: signature, issuer, audiences, then time with a minute of leeway.

mod claims;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use claims::{Claims, KubernetesClaims, ObjectRef, ServiceAccountUser};

use crate::{Error, Result, pem};

/// The issuer upstream's `--service-account-issuer` is set to by k3s and kubeadm.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Clock skew tolerated on `exp`, `nbf` and `iat` (go-jose's default leeway).
pub const LEEWAY_SECONDS: i64 = 60;
const ALG: &str = "ES256";
/// DER `SubjectPublicKeyInfo` header for an uncompressed P-256 point
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a token was not accepted. Messages follow upstream's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a JWT at all (e.g. a static bearer token).
    #[error("token is not a JWT: {0}")]
    Malformed(String),
    #[error("unsupported token signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("invalid signature, no keys found")]
    UnknownKey,
    #[error("invalid signature")]
    BadSignature,
    /// Not one of ours: upstream passes such tokens on to other authenticators.
    #[error("token issuer {0:?} is invalid")]
    WrongIssuer(String),
    #[error("token audiences {token:?} is invalid for the target audiences {accepted:?}")]
    WrongAudience {
        token: Vec<String>,
        accepted: Vec<String>,
    },
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("service account token is missing the {0} claim")]
    MissingClaim(&'static str),
}

impl VerifyError {
    /// Whether the token is simply not a service account token of ours (not a JWT, or
    /// another issuer's): upstream then lets the next authenticator try, rather than
    /// failing the request.
    pub fn is_not_ours(&self) -> bool {
        matches!(self, Self::Malformed(_) | Self::WrongIssuer(_))
    }
}

/// A public key that verifies tokens, with its key ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    /// The uncompressed P-256 point (0x04 ‖ x ‖ y).
    point: Vec<u8>,
}

impl PublicKey {
    fn from_point(point: &[u8]) -> Self {
        let spki = [P256_SPKI_PREFIX, point].concat();
        Self {
            key_id: B64URL.encode(Sha256::digest(&spki)),
            point: point.to_vec(),
        }
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> Vec<u8> {
        [P256_SPKI_PREFIX, &self.point].concat()
    }

    /// The key as a JWK (RFC 7517/7518), as upstream's `/openid/v1/jwks` lists it.
    pub fn jwk(&self) -> Value {
        let (x, y) = self.point[1..].split_at(32);
        json!({
            "use": "sig",
            "kty": "EC",
            "kid": self.key_id,
            "crv": "P-256",
            "alg": ALG,
            "x": B64URL.encode(x),
            "y": B64URL.encode(y),
        })
    }
}

/// A JWK set of `keys`, the body of `/openid/v1/jwks`.
pub fn jwks(keys: &[PublicKey]) -> Value {
    json!({ "keys": keys.iter().map(PublicKey::jwk).collect::<Vec<_>>() })
}

/// The OpenID discovery document of `/.well-known/openid-configuration`.
pub fn openid_configuration(issuer: &str, jwks_uri: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALG],
    })
}

struct KeyInner {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    public: PublicKey,
}

/// The service account signing key (ECDSA P-256). Cheap to clone; `Debug` shows only
/// the key ID.
#[derive(Clone)]
pub struct ServiceAccountKey(Arc<KeyInner>);

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("key_id", &self.0.public.key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    pub fn generate() -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::Crypto("generating the service account key failed"))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a PKCS#8 ECDSA P-256 private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self> {
        match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(der)) => Self::from_pkcs8(der.secret_pkcs8_der()),
            Ok(_) => Err(Error::BadPem(
                "the service account key must be a PKCS#8 ECDSA P-256 key".into(),
            )),
            Err(e) => Err(Error::BadPem(format!("bad private key PEM: {e}"))),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| {
                Error::BadPem(format!("not a PKCS#8 ECDSA P-256 service account key: {e}"))
            })?;
        let public = PublicKey::from_point(pair.public_key().as_ref());
        Ok(Self(Arc::new(KeyInner {
            pair,
            pkcs8: der.to_vec(),
            public,
        })))
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        pem::encode("PRIVATE KEY", &self.0.pkcs8)
    }

    pub fn public_key(&self) -> PublicKey {
        self.0.public.clone()
    }

    pub fn key_id(&self) -> &str {
        &self.0.public.key_id
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let header = json!({"alg": ALG, "kid": self.key_id()});
        let payload = serde_json::to_vec(claims)
            .map_err(|_| Error::Crypto("encoding token claims failed"))?;
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(payload)
        );
        let sig = self
            .0
            .pair
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .map_err(|_| Error::Crypto("signing the token failed"))?;
        Ok(format!("{input}.{}", B64URL.encode(sig.as_ref())))
    }
}

/// Checks tokens against a set of public keys (several during key rotation).
#[derive(Clone, Debug)]
pub struct TokenVerifier {
    keys: Vec<PublicKey>,
    issuers: Vec<String>,
    audiences: Vec<String>,
}

impl TokenVerifier {
    /// Accepts tokens signed by one of `keys`, issued by one of `issuers`, for at
    /// least one of `audiences` (upstream's `--api-audiences`, which default to the
    /// issuer). With no audiences, any audience is accepted, as upstream does.
    pub fn new(keys: Vec<PublicKey>, issuers: Vec<String>, audiences: Vec<String>) -> Self {
        Self {
            keys,
            issuers,
            audiences,
        }
    }

    /// The same keys and issuers for other audiences (a TokenReview's `audiences`).
    pub fn for_audiences(&self, audiences: Vec<String>) -> Self {
        Self {
            audiences,
            ..self.clone()
        }
    }

    /// Verifies `token` now.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_at(token, time::OffsetDateTime::now_utc().unix_timestamp())
    }

    /// Verifies `token` at `now` (seconds since the epoch).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Claims, VerifyError> {
        let malformed = |why: &str| VerifyError::Malformed(why.to_string());
        let mut parts = token.trim().split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("expected three dot-separated parts"));
        };
        let decode = |part: &str, what: &str| {
            B64URL
                .decode(part)
                .map_err(|_| malformed(&format!("{what} is not base64url")))
        };
        let header: Value = serde_json::from_slice(&decode(h, "header")?)
            .map_err(|_| malformed("header is not JSON"))?;
        let payload = decode(p, "payload")?;
        // Like upstream, look at the (not yet verified) issuer first: a token of
        // another issuer is not ours to judge.
        let unverified: Value =
            serde_json::from_slice(&payload).map_err(|_| malformed("payload is not JSON"))?;
        let iss = unverified["iss"].as_str().unwrap_or_default();
        if !self.issuers.iter().any(|i| i == iss) {
            return Err(VerifyError::WrongIssuer(iss.to_string()));
        }
        let alg = header["alg"].as_str().unwrap_or_default();
        if alg != ALG {
            return Err(VerifyError::UnsupportedAlgorithm(alg.to_string()));
        }
        let signature = decode(s, "signature")?;
        let candidates: Vec<&PublicKey> = match header["kid"].as_str().filter(|k| !k.is_empty()) {
            Some(kid) => self.keys.iter().filter(|k| k.key_id == kid).collect(),
            None => self.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(VerifyError::UnknownKey);
        }
        let signed = &token.trim().as_bytes()[..h.len() + 1 + p.len()];
        let valid = candidates.iter().any(|k| {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &k.point)
                .verify(signed, &signature)
                .is_ok()
        });
        if !valid {
            return Err(VerifyError::BadSignature);
        }
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|e| malformed(&format!("claims: {e}")))?;
        // A token without audiences is a legacy one, meant for the API server.
        let token_auds = if claims.aud.is_empty() {
            &self.audiences
        } else {
            &claims.aud
        };
        if !self.audiences.is_empty() && !token_auds.iter().any(|a| self.audiences.contains(a)) {
            return Err(VerifyError::WrongAudience {
                token: token_auds.clone(),
                accepted: self.audiences.clone(),
            });
        }
        if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
            return Err(VerifyError::Expired);
        }
        if now.saturating_add(LEEWAY_SECONDS) < claims.nbf.max(claims.iat) {
            return Err(VerifyError::NotYetValid);
        }
        if claims.kubernetes.namespace.is_empty() {
            return Err(VerifyError::MissingClaim("kubernetes.io namespace"));
        }
        if claims.kubernetes.serviceaccount.name.is_empty() {
            return Err(VerifyError::MissingClaim("kubernetes.io serviceaccount"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
