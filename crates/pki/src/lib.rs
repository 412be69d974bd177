//! The cluster's certificates and credentials.
//!
//! # Layout on disk
//!
//! [`ClusterPki::ensure`] keeps everything in one directory (k8rs uses
//! `<data-dir>/server/tls/`, mode 0700; every file mode 0600). File names follow k3s:
//!
//! | file | what |
//! |---|---|
//! | `server-ca.{crt,key}` | the cluster CA ([`ClusterPki::ca`]) |
//! | `request-header-ca.{crt,key}` | the front-proxy (aggregation) CA |
//! | `serving-kube-apiserver.{crt,key}` | the API server's serving certificate |
//! | `client-admin.{crt,key}` | `system:admin` in `system:masters`, for the admin kubeconfig |
//! | `client-kube-apiserver.{crt,key}` | the API server's client certificate towards kubelets (`system:apiserver`) |
//! | `client-auth-proxy.{crt,key}` | the front proxy's client certificate (`system:auth-proxy`) |
//! | `service.key` | the service account token signing key (ECDSA P-256, ES256) |
//!
//! Files are created on first start and reused afterwards. A leaf certificate is
//! reissued when it is missing, expires within 90 days, was not signed by the current
//! CA, or its subject or names differ from what is wanted now (a new node IP reissues
//! the serving certificate, never the CA). A file that exists but cannot be parsed is
//! an error naming it; nothing is silently regenerated over it.
//!
//! # One CA for serving and clients
//!
//! Like kubeadm (and unlike k3s, which splits `server-ca` and `client-ca`), one CA signs
//! both the serving certificates and the client certificates: a client certificate is
//! trusted exactly when this CA signed it *and* it carries the client-auth usage, which
//! rustls checks, so a serving certificate cannot pass as a client. Callers should
//! still ask [`ClusterPki::client_ca_pem`] for the CA that verifies clients, so that a
//! later split changes nothing for them. The request-header CA is separate, as upstream
//! requires (a front proxy's certificate must not be usable as an ordinary client).
//!
//! # Pieces
//!
//! - [`ca`]: a CA and what it issues ([`LeafSpec`]); [`certs`]: reading certificates back.
//! - [`tls`]: rustls configurations and the user a client certificate stands for.
//! - [`kubeconfig`]: writing kubeconfigs and merging a context into `~/.kube/config`.
//! - [`jwt`]: service account tokens (ES256, upstream's bound-token claims) and JWKS.
//! - [`token`]: the server's join token (`K10<ca hash>::server:<secret>`).
//! - [`bearer`]: static bearer tokens (upstream's token file), compared in constant time.
//! - [`users`]: the well-known user and group names.
//!
//! # A server start
//!
//! ```
//! # fn main() -> pki::Result<()> {
//! # let data_dir = tempfile::tempdir().unwrap();
//! # let data_dir = data_dir.path();
//! use pki::{ClusterPki, ServerPkiOptions, jwt, kubeconfig, tls, token};
//!
//! let pki = ClusterPki::ensure(
//!     &data_dir.join("server/tls"),
//!     &ServerPkiOptions {
//!         dns_names: vec!["node-1".into()],
//!         ips: vec!["10.0.0.5".parse().unwrap(), "10.43.0.1".parse().unwrap()],
//!     },
//! )?;
//! let join = token::ensure_server_token(&data_dir.join("server/token"), &pki.ca.cert_pem)?;
//! let server_tls = tls::server_config(&pki.serving, pki.client_ca_pem())?;
//! let admin = kubeconfig::render("k8rs", "https://127.0.0.1:6443", &pki.ca.cert_pem, &pki.admin);
//! kubeconfig::write(&data_dir.join("k8rs.yaml"), &admin)?;
//!
//! let sa = jwt::ObjectRef::new("default", "uid-1");
//! let claims = jwt::Claims::new(jwt::DEFAULT_ISSUER, &sa, "default", vec![jwt::DEFAULT_ISSUER.into()], 1_700_000_000, 3600);
//! let signed = pki.service_account_key.sign(&claims)?;
//! let verifier = jwt::TokenVerifier::new(
//!     vec![pki.service_account_key.public_key()],
//!     vec![jwt::DEFAULT_ISSUER.into()],
//!     vec![jwt::DEFAULT_ISSUER.into()],
//! );
//! assert_eq!(verifier.verify_at(&signed, 1_700_000_001).unwrap().user().name, "system:serviceaccount:default:default");
//! # let _ = (join, server_tls);
//! # Ok(())
//! # }
//! ```

pub mod bearer;
pub mod ca;
pub mod certs;
mod cluster;
mod files;
pub mod jwt;
pub mod kubeconfig;
pub mod pem;
pub mod tls;
pub mod token;
pub mod users;

use std::path::PathBuf;

pub use ca::{CertificateAuthority, LeafSpec};
pub use certs::CertAndKey;
pub use cluster::{ClusterPki, ServerPkiOptions, load_server_ca};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but does not hold what it should.
    #[error("{} is not a valid certificate or key: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    /// A certificate or key given in memory is not valid.
    #[error("invalid certificate or key: {0}")]
    BadPem(String),
    /// rcgen could not build a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The system random number generator or a signature failed.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// rustls rejected the configuration.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    /// A kubeconfig could not be read, merged or written.
    #[error("kubeconfig {}: {reason}", path.display())]
    Kubeconfig { path: PathBuf, reason: String },
    /// A join token or token file is malformed, or a CA does not match a token.
    #[error("invalid token: {0}")]
    Token(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fills `buf` from the system's secure random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| Error::Crypto("system random source unavailable"))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
