//! The cluster's PKI, generated on first start and kept in the data dir: one CA that
//! signs the API server's serving certificate and the client certificates (users,
//! nodes, components); kubeconfigs for clients; and the server's join token.
//!
//! One CA serves both roles (k3s splits server and client CAs); a client certificate
//! is trusted exactly when this CA signed it.

mod certs;
mod files;
pub mod kubeconfig;
pub mod tls;
pub mod token;

use std::path::PathBuf;

pub use certs::{CertAndKey, ClusterPki, ServerPkiOptions};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid certificate or key: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(String),
    #[error("kubeconfig {}: {reason}", path.display())]
    Kubeconfig { path: PathBuf, reason: String },
    #[error("invalid token: {0}")]
    Token(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
