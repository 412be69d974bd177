//! TLS: the certificates of the served Ingresses' `spec.tls` (`kubernetes.io/tls`
//! Secrets: PEM `tls.crt` chain and `tls.key`), chosen by the client's SNI name; a
//! self-signed certificate for names no Ingress covers (and clients sending no SNI).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::routes::host_matches;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("secret has no {0}")]
    Missing(&'static str),
    #[error("bad tls.crt: {0}")]
    Cert(String),
    #[error("bad tls.key: {0}")]
    Key(String),
    #[error("cannot generate the default certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The key pair of a TLS Secret.
pub fn from_secret(secret: &Secret) -> Result<Arc<CertifiedKey>, Error> {
    let data = secret.data.as_ref();
    let field = |name: &'static str| {
        data.and_then(|d| d.get(name))
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
            .ok_or(Error::Missing(name))
    };
    from_pem(field("tls.crt")?, field("tls.key")?)
}

/// A certificate chain and key from PEM.
pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, Error> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(Error::Cert("no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| Error::Key(e.to_string()))?;
    let key = any_supported_type(&key).map_err(|e| Error::Key(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(chain, key)))
}

/// The certificate for names no Ingress covers, as ingress-nginx's "fake certificate".
pub fn self_signed() -> Result<Arc<CertifiedKey>, Error> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_string()])?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "k8rs Ingress Controller Default Certificate",
    );
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

/// The TLS hosts of the served Ingresses and their key pairs, the oldest Ingress's
/// first.
#[derive(Debug, Default)]
pub struct Certs {
    hosts: Vec<(String, Arc<CertifiedKey>)>,
    /// From a `spec.tls` entry without hosts: the controller's default.
    default: Option<Arc<CertifiedKey>>,
}

impl Certs {
    pub fn add(&mut self, hosts: &[String], key: Arc<CertifiedKey>) {
        if hosts.is_empty() {
            self.default.get_or_insert(key);
            return;
        }
        for h in hosts {
            self.hosts.push((h.to_ascii_lowercase(), key.clone()));
        }
    }

    /// The key pair for `server_name`: an exact host before a wildcard, else the
    /// default of a host-less entry.
    pub fn find(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let by_name = server_name.and_then(|name| {
            let exact = self
                .hosts
                .iter()
                .find(|(h, _)| !h.starts_with("*.") && host_matches(h, name));
            let wild = || {
                self.hosts
                    .iter()
                    .find(|(h, _)| h.starts_with("*.") && host_matches(h, name))
            };
            exact.or_else(wild).map(|(_, k)| k.clone())
        });
        by_name.or_else(|| self.default.clone())
    }
}

/// rustls' view of the current certificates.
pub struct Resolver {
    pub table: tokio::sync::watch::Receiver<Option<Arc<crate::table::Table>>>,
    pub fallback: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.borrow().clone();
        let found = table.and_then(|t| t.certs.find(hello.server_name()));
        Some(found.unwrap_or_else(|| self.fallback.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        from_pem(
            c.cert.pem().as_bytes(),
            c.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_default() {
        let (a, wild, default) = (key("a.example.com"), key("*.example.com"), key("x"));
        let mut certs = Certs::default();
        certs.add(&["*.example.com".into()], wild.clone());
        certs.add(&["A.example.com".into()], a.clone());
        let same = |found: Option<Arc<CertifiedKey>>, want: &Arc<CertifiedKey>| {
            found.is_some_and(|f| Arc::ptr_eq(&f, want))
        };
        assert!(same(certs.find(Some("a.example.com")), &a));
        assert!(same(certs.find(Some("b.example.com")), &wild));
        assert!(certs.find(Some("c.b.example.com")).is_none());
        assert!(certs.find(None).is_none());
        certs.add(&[], default.clone());
        assert!(same(certs.find(Some("other.org")), &default));
        assert!(same(certs.find(None), &default));
    }

    #[test]
    fn secrets_without_a_key_or_with_garbage_are_refused() {
        let c = rcgen::generate_simple_self_signed(vec!["a".to_string()]).unwrap();
        let (cert, pkey) = (c.cert.pem(), c.signing_key.serialize_pem());
        assert!(from_pem(cert.as_bytes(), pkey.as_bytes()).is_ok());
        assert!(matches!(
            from_pem(b"junk", pkey.as_bytes()),
            Err(Error::Cert(_))
        ));
        assert!(matches!(
            from_pem(cert.as_bytes(), b"junk"),
            Err(Error::Key(_))
        ));
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}
        }))
        .unwrap();
        assert!(matches!(
            from_secret(&secret),
            Err(Error::Missing("tls.crt"))
        ));
        assert!(self_signed().is_ok());
    }
}
