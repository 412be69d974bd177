//! A certificate authority and the leaf certificates it issues.

mod subject;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::certs::{CertAndKey, CertInfo};
use crate::{Error, Result, pem, random_bytes};

/// How long a CA is valid (k3s: ten years).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long leaf certificates are valid by default (k3s: one year).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Leaf certificates expiring sooner than this are reissued on start (k3s: 90 days).
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);
/// Certificates start this long in the past, so that a peer whose clock is a little
/// behind still accepts them.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// What a leaf certificate may be used for (its extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    Client,
    Server,
    ClientAndServer,
}

/// What to put in a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    pub common_name: String,
    /// Each becomes one O attribute (for client certificates: the user's groups).
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub usage: Usage,
    pub validity: Duration,
}

impl LeafSpec {
    /// A client certificate for user `common_name` in groups `organizations`.
    pub fn client(common_name: impl Into<String>, organizations: &[&str]) -> Self {
        Self {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            dns_names: Vec::new(),
            ips: Vec::new(),
            usage: Usage::Client,
            validity: LEAF_VALIDITY,
        }
    }

    /// A serving certificate for the given names and addresses.
    pub fn server(common_name: impl Into<String>, dns_names: &[String], ips: &[IpAddr]) -> Self {
        Self {
            common_name: common_name.into(),
            organizations: Vec::new(),
            dns_names: dns_names.to_vec(),
            ips: ips.to_vec(),
            usage: Usage::Server,
            validity: LEAF_VALIDITY,
        }
    }

    pub fn organizations(mut self, organizations: &[&str]) -> Self {
        self.organizations = organizations.iter().map(|o| o.to_string()).collect();
        self
    }

    pub fn valid_for(mut self, validity: Duration) -> Self {
        self.validity = validity;
        self
    }

    /// Whether `info` already says what this spec asks for (subject, names, usage);
    /// the order of names and groups does not matter.
    pub fn matches(&self, info: &CertInfo) -> bool {
        fn set<T: Ord + Clone>(v: &[T]) -> Vec<T> {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v
        }
        let lower =
            |v: &[String]| set(&v.iter().map(|d| d.to_ascii_lowercase()).collect::<Vec<_>>());
        let usage_ok = match self.usage {
            Usage::Client => info.client_auth && !info.server_auth,
            Usage::Server => info.server_auth && !info.client_auth,
            Usage::ClientAndServer => info.client_auth && info.server_auth,
        };
        info.common_name.as_deref() == Some(self.common_name.as_str())
            && set(&info.organizations) == set(&self.organizations)
            && lower(&info.dns_names) == lower(&self.dns_names)
            && set(&info.ip_addresses) == set(&self.ips)
            && usage_ok
    }
}

/// A CA: its certificate and key (PEM). The key never appears in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    pub cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> Result<SerialNumber> {
    let mut serial = [0u8; 16];
    random_bytes(&mut serial)?;
    serial[0] &= 0x7f; // a positive INTEGER
    serial[0] |= 0x01; // and a full 16 bytes long
    Ok(SerialNumber::from_slice(&serial))
}

fn validity(params: &mut CertificateParams, validity: Duration) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let span = time::Duration::try_from(validity)
        .map_err(|_| Error::Crypto("certificate validity out of range"))?;
    params.not_before = now - BACKDATE;
    params.not_after = now
        .checked_add(span)
        .ok_or(Error::Crypto("certificate validity out of range"))?;
    Ok(())
}

impl CertificateAuthority {
    /// A new self-signed CA (ECDSA P-256) named `common_name`.
    pub fn generate(common_name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        validity(&mut params, CA_VALIDITY)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A CA from PEM, checked: the certificate parses and is a CA, and the key is its.
    pub fn from_pem(cert_pem: impl Into<String>, key_pem: impl Into<String>) -> Result<Self> {
        let pair = CertAndKey {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        };
        if !pair.check()?.is_ca {
            return Err(Error::BadPem("the certificate is not a CA".into()));
        }
        Ok(Self {
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        })
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA as a certificate and key pair.
    pub fn cert_and_key(&self) -> CertAndKey {
        CertAndKey {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }

    /// Issues a leaf certificate with a fresh ECDSA P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<CertAndKey> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;

        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let [only] = spec.organizations.as_slice() {
            params
                .distinguished_name
                .push(DnType::OrganizationName, only.as_str());
        }
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        let mut dns = spec.dns_names.clone();
        dns.sort();
        dns.dedup();
        for name in dns {
            let ia5 = name.as_str().try_into().map_err(|_| {
                Error::BadPem(format!("invalid DNS name {name:?} for a certificate"))
            })?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        let mut ips = spec.ips.clone();
        ips.sort();
        ips.dedup();
        params
            .subject_alt_names
            .extend(ips.into_iter().map(SanType::IpAddress));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match spec.usage {
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::ClientAndServer => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        validity(&mut params, spec.validity)?;
        let cert = params.signed_by(&key, &issuer)?;

        let cert_pem = if spec.organizations.len() > 1 {
            let subject = subject::encode(&spec.common_name, &spec.organizations);
            let der = subject::replace(cert.der(), &subject, issuer.key())?;
            pem::encode("CERTIFICATE", &der)
        } else {
            cert.pem()
        };
        Ok(CertAndKey {
            cert_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// Whether this CA signed the (first) certificate in `cert_pem`.
    pub fn signed(&self, cert_pem: &str) -> bool {
        let (Ok(ca_der), Ok(leaf_der)) =
            (pem::first_cert(&self.cert_pem), pem::first_cert(cert_pem))
        else {
            return false;
        };
        signed_by(&ca_der, &leaf_der)
    }
}

fn signed_by(ca_der: &CertificateDer<'_>, leaf_der: &CertificateDer<'_>) -> bool {
    let (Ok((_, ca)), Ok((_, leaf))) = (
        x509_parser::parse_x509_certificate(ca_der),
        x509_parser::parse_x509_certificate(leaf_der),
    ) else {
        return false;
    };
    leaf.issuer().as_raw() == ca.subject().as_raw()
        && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> CertificateAuthority {
        CertificateAuthority::generate("test-ca").unwrap()
    }

    #[test]
    fn serving_certificates_carry_their_names() {
        let ca = ca();
        let ips: Vec<IpAddr> = vec!["10.43.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let dns = vec!["kubernetes".to_string(), "node-1".to_string()];
        let leaf = ca
            .issue(&LeafSpec::server("kube-apiserver", &dns, &ips))
            .unwrap();
        let info = leaf.check().unwrap();
        assert_eq!(info.common_name.as_deref(), Some("kube-apiserver"));
        assert_eq!(info.dns_names, dns);
        assert_eq!(info.ip_addresses, ips);
        assert!(info.server_auth && !info.client_auth && !info.is_ca);
        assert!(ca.signed(&leaf.cert_pem));
        assert!(LeafSpec::server("kube-apiserver", &dns, &ips).matches(&info));
        assert!(!LeafSpec::server("kube-apiserver", &dns[..1], &ips).matches(&info));
        let year = LEAF_VALIDITY.as_secs() as i64;
        assert!((info.not_after - info.not_before - year - 3600).abs() < 5);
    }

    #[test]
    fn client_certificates_keep_every_group() {
        let ca = ca();
        for groups in [&[][..], &["system:masters"][..], &["a", "b", "c"][..]] {
            let leaf = ca.issue(&LeafSpec::client("alice", groups)).unwrap();
            let info = leaf.check().unwrap();
            assert_eq!(info.common_name.as_deref(), Some("alice"));
            assert_eq!(info.organizations, groups);
            assert!(info.client_auth && !info.server_auth);
            assert!(ca.signed(&leaf.cert_pem), "{groups:?}");
        }
    }

    #[test]
    fn another_ca_did_not_sign() {
        let (a, b) = (ca(), ca());
        let leaf = a.issue(&LeafSpec::client("x", &["g1", "g2"])).unwrap();
        assert!(a.signed(&leaf.cert_pem));
        assert!(!b.signed(&leaf.cert_pem));
        assert!(!a.signed("not pem"));
    }

    #[test]
    fn from_pem_checks_the_pair() {
        let (a, b) = (ca(), ca());
        assert_eq!(
            CertificateAuthority::from_pem(a.cert_pem.clone(), a.key_pem()).unwrap(),
            a
        );
        assert!(CertificateAuthority::from_pem(a.cert_pem.clone(), b.key_pem()).is_err());
        let leaf = a.issue(&LeafSpec::client("x", &[])).unwrap();
        assert!(CertificateAuthority::from_pem(leaf.cert_pem, leaf.key_pem).is_err());
        assert!(!format!("{a:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn bad_dns_names_are_errors() {
        let err = ca()
            .issue(&LeafSpec::server("x", &["bad name\u{e9}".into()], &[]))
            .unwrap_err();
        assert!(err.to_string().contains("invalid DNS name"), "{err}");
    }
}
