//! rustls configurations (ring provider) and the user a client certificate stands for.
//!
//! The API server presents its serving certificate and asks for, but does not
//! require, a client certificate: one signed by the client CA (with the client-auth
//! usage) authenticates the connection; none at all leaves the request to bearer
//! tokens or anonymous access; a certificate from anyone else fails the handshake
//! (Go's `VerifyClientCertIfGiven`, which upstream uses).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;

use crate::{CertAndKey, Error, Result, pem};

/// ALPN protocols the API server offers, in preference order.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

fn roots(ca_pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in pem::certs(ca_pem)? {
        roots.add(c).map_err(tls_err)?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The API server's (or a kubelet's) TLS: presents `serving`, verifies optional client
/// certificates against `client_ca_pem`, offers h2 and http/1.1.
pub fn server_config(
    serving: &CertAndKey,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca_pem)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(tls_err)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pem::certs(&serving.cert_pem)?, pem::key(&serving.key_pem)?)
        .map_err(tls_err)?;
    cfg.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A client TLS config trusting only `ca_pem`, presenting `identity` when given. No
/// ALPN is set: add `h2` only if the HTTP client speaks it.
pub fn client_config(
    ca_pem: &str,
    identity: Option<&CertAndKey>,
) -> Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots(ca_pem)?);
    let cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(pem::certs(&id.cert_pem)?, pem::key(&id.key_pem)?)
            .map_err(tls_err)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// A client TLS config that accepts any server certificate. Only for fetching the
/// cluster CA when joining, whose bytes are then checked against the join token's
/// hash ([`crate::token::JoinToken::check_ca`]) before anything trusts them.
pub fn unverified_client_config() -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(AcceptAnyServer(provider.clone()));
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Accepts any certificate, but still checks the handshake's signatures.
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The user of a verified client certificate (DER), as upstream's x509 authenticator
/// reads it: the subject's CN is the name, each O a group. `None` when the CN is
/// missing or empty (upstream then does not authenticate the request).
pub fn cert_user(der: &[u8]) -> Option<(String, Vec<String>)> {
    let info = crate::certs::CertInfo::from_der(der).ok()?;
    let name = info.common_name.filter(|n| !n.is_empty())?;
    Some((name, info.organizations))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateAuthority, LeafSpec};

    #[test]
    fn client_certificates_name_their_user() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let der = |c: &CertAndKey| pem::first_cert(&c.cert_pem).unwrap();
        let admin = ca
            .issue(&LeafSpec::client("system:admin", &["system:masters"]))
            .unwrap();
        assert_eq!(
            cert_user(&der(&admin)),
            Some(("system:admin".into(), vec!["system:masters".into()]))
        );
        let multi = ca.issue(&LeafSpec::client("bob", &["dev", "ops"])).unwrap();
        assert_eq!(
            cert_user(&der(&multi)),
            Some(("bob".into(), vec!["dev".into(), "ops".into()]))
        );
        let nameless = ca.issue(&LeafSpec::client("", &["dev"])).unwrap();
        assert_eq!(cert_user(&der(&nameless)), None);
        assert_eq!(cert_user(b"junk"), None);
    }

    #[test]
    fn configs_build_and_reject_bad_pem() {
        let ca = CertificateAuthority::generate("ca").unwrap();
        let serving = ca
            .issue(&LeafSpec::server("s", &["localhost".into()], &[]))
            .unwrap();
        let cfg = server_config(&serving, &ca.cert_pem).unwrap();
        assert_eq!(cfg.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        client_config(&ca.cert_pem, Some(&serving)).unwrap();
        client_config(&ca.cert_pem, None).unwrap();
        assert!(server_config(&serving, "not a pem").is_err());
        let broken = CertAndKey {
            cert_pem: serving.cert_pem.clone(),
            key_pem: "nope".into(),
        };
        assert!(server_config(&broken, &ca.cert_pem).is_err());
    }
}
