//! rustls configurations: the API server presents its serving certificate and asks
//! for, but does not require, a client certificate signed by the cluster CA (bearer
//! tokens still work); and the user a verified client certificate stands for.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{CertAndKey, Error, Result};

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("bad certificate PEM: {e}")))
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::Tls(format!("bad key PEM: {e}")))
}

fn roots(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs(ca_pem)? {
        roots.add(c).map_err(|e| Error::Tls(e.to_string()))?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The API server's TLS: serving certificate, optional client certificates from `ca_pem`.
pub fn server_config(serving: &CertAndKey, ca_pem: &str) -> Result<Arc<rustls::ServerConfig>> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&serving.cert_pem)?, key(&serving.key_pem)?)
        .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client TLS config trusting `ca_pem`, presenting `identity` when given.
pub fn client_config(
    ca_pem: &str,
    identity: Option<&CertAndKey>,
) -> Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots(ca_pem)?);
    let cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(certs(&id.cert_pem)?, key(&id.key_pem)?)
            .map_err(|e| Error::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The user of a client certificate: CN is the name, each O a group (upstream's x509
/// authenticator).
pub fn cert_user(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some((name, groups))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterPki, ServerPkiOptions};

    #[test]
    fn client_certificates_name_their_user() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::ensure(dir.path(), &ServerPkiOptions::default()).unwrap();
        let der = certs(&pki.admin.cert_pem).unwrap().remove(0);
        assert_eq!(
            cert_user(&der),
            Some(("system:admin".into(), vec!["system:masters".into()]))
        );
        server_config(&pki.serving, &pki.ca.cert_pem).unwrap();
        client_config(&pki.ca.cert_pem, Some(&pki.admin)).unwrap();
    }
}
