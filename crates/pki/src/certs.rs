//! Certificates with their keys, and what a certificate says once parsed back.

use std::fmt;
use std::net::IpAddr;

use rcgen::KeyPair;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::{Error, Result, pem};

/// A certificate (possibly followed by its chain) and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key (logs, panics).
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertAndKey {
    /// The first certificate, parsed.
    pub fn info(&self) -> Result<CertInfo> {
        CertInfo::from_pem(&self.cert_pem)
    }

    /// Checks that both parse and that the key is the certificate's.
    pub fn check(&self) -> Result<CertInfo> {
        let info = self.info()?;
        let key = KeyPair::from_pem(&self.key_pem)
            .map_err(|e| Error::BadPem(format!("bad private key: {e}")))?;
        if key.public_key_raw() != info.public_key {
            return Err(Error::BadPem(
                "the private key does not belong to the certificate".into(),
            ));
        }
        Ok(info)
    }
}

/// What a certificate says, read back with x509-parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's CN, if it has one.
    pub common_name: Option<String>,
    /// The subject's O values, in order.
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Validity bounds, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    /// Extended key usages (both false when the extension is absent).
    pub client_auth: bool,
    pub server_auth: bool,
    /// The raw subject public key (for EC keys the uncompressed point).
    pub public_key: Vec<u8>,
}

impl CertInfo {
    /// Parses the first certificate in `pem`.
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::from_der(&pem::first_cert(pem)?)
    }

    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::BadPem(format!("bad certificate: {e}")))?;
        Self::from_x509(&cert)
    }

    pub(crate) fn from_x509(cert: &X509Certificate<'_>) -> Result<Self> {
        let bad = |e: x509_parser::error::X509Error| Error::BadPem(format!("bad certificate: {e}"));
        let subject = cert.subject();
        let text = |a: &x509_parser::x509::AttributeTypeAndValue<'_>| {
            a.as_str().map(str::to_string).map_err(bad)
        };
        let common_name = subject.iter_common_name().next().map(text).transpose()?;
        let organizations = subject
            .iter_organization()
            .map(text)
            .collect::<Result<_>>()?;
        let (mut dns_names, mut ip_addresses) = (Vec::new(), Vec::new());
        if let Some(san) = cert.subject_alternative_name().map_err(bad)? {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_from_bytes(b) {
                            ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let (client_auth, server_auth) = match cert.extended_key_usage().map_err(bad)? {
            Some(eku) => (eku.value.client_auth, eku.value.server_auth),
            None => (false, false),
        };
        Ok(Self {
            common_name,
            organizations,
            dns_names,
            ip_addresses,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            is_ca: cert.is_ca(),
            client_auth,
            server_auth,
            public_key: cert.public_key().subject_public_key.data.to_vec(),
        })
    }
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}
