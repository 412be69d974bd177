//! The CA and the certificates it issues.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::files::{read, write_private};
use crate::{Error, Result};

/// A certificate and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// What the API server's serving certificate must cover besides the fixed names.
#[derive(Clone, Debug, Default)]
pub struct ServerPkiOptions {
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// The cluster PKI as kept in `dir`.
#[derive(Clone, Debug)]
pub struct ClusterPki {
    pub dir: PathBuf,
    pub ca: CertAndKey,
    /// The API server's serving certificate.
    pub serving: CertAndKey,
    /// `system:admin` in `system:masters`, for the admin kubeconfig.
    pub admin: CertAndKey,
    /// The API server's client certificate towards kubelets.
    pub apiserver_kubelet_client: CertAndKey,
}

/// Names every API server certificate carries (upstream's apiserver certificate SANs).
const FIXED_DNS: &[&str] = &[
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
];

fn validity(years: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::hours(1), now + Duration::days(365 * years))
}

fn load_pair(dir: &Path, name: &str) -> Result<Option<CertAndKey>> {
    let (cp, kp) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    match (read(&cp)?, read(&kp)?) {
        (Some(cert_pem), Some(key_pem)) => {
            KeyPair::from_pem(&key_pem).map_err(|e| Error::BadFile {
                path: kp.clone(),
                reason: e.to_string(),
            })?;
            if !cert_pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::BadFile {
                    path: cp,
                    reason: "no PEM certificate".into(),
                });
            }
            Ok(Some(CertAndKey { cert_pem, key_pem }))
        }
        _ => Ok(None),
    }
}

fn save_pair(dir: &Path, name: &str, pair: &CertAndKey) -> Result<()> {
    write_private(&dir.join(format!("{name}.crt")), pair.cert_pem.as_bytes())?;
    write_private(&dir.join(format!("{name}.key")), pair.key_pem.as_bytes())
}

fn new_ca() -> Result<CertAndKey> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!(
            "k8rs-server-ca@{}",
            OffsetDateTime::now_utc().unix_timestamp()
        ),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity(10);
    let cert = params.self_signed(&key)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl ClusterPki {
    /// Loads the PKI from `dir`, creating what is missing; the serving certificate is
    /// reissued when the names it must cover changed.
    pub fn ensure(dir: &Path, opts: &ServerPkiOptions) -> Result<Self> {
        let ca = match load_pair(dir, "server-ca")? {
            Some(ca) => ca,
            None => {
                let ca = new_ca()?;
                save_pair(dir, "server-ca", &ca)?;
                ca
            }
        };
        let mut pki = Self {
            dir: dir.to_path_buf(),
            serving: ca.clone(),
            admin: ca.clone(),
            apiserver_kubelet_client: ca.clone(),
            ca,
        };
        let (dns, ips) = pki.serving_names(opts);
        let sans_file = dir.join("serving-kube-apiserver.sans");
        let wanted = format!(
            "{}\n{}",
            dns.join(","),
            ips.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        pki.serving = match (load_pair(dir, "serving-kube-apiserver")?, read(&sans_file)?) {
            (Some(pair), Some(have)) if have == wanted => pair,
            _ => {
                let pair = pki.issue_serving(&dns, &ips)?;
                save_pair(dir, "serving-kube-apiserver", &pair)?;
                write_private(&sans_file, wanted.as_bytes())?;
                pair
            }
        };
        pki.admin =
            pki.load_or_issue_client(dir, "client-admin", "system:admin", &["system:masters"])?;
        pki.apiserver_kubelet_client = pki.load_or_issue_client(
            dir,
            "client-kube-apiserver",
            "system:kube-apiserver",
            &["system:masters"],
        )?;
        Ok(pki)
    }

    fn serving_names(&self, opts: &ServerPkiOptions) -> (Vec<String>, Vec<IpAddr>) {
        let mut dns: Vec<String> = FIXED_DNS.iter().map(|s| s.to_string()).collect();
        dns.extend(opts.dns_names.iter().cloned());
        dns.sort();
        dns.dedup();
        let mut ips: Vec<IpAddr> = vec![
            "127.0.0.1".parse().expect("valid"),
            "::1".parse().expect("valid"),
        ];
        ips.extend(opts.ips.iter().copied());
        ips.sort();
        ips.dedup();
        (dns, ips)
    }

    fn load_or_issue_client(
        &self,
        dir: &Path,
        file: &str,
        cn: &str,
        orgs: &[&str],
    ) -> Result<CertAndKey> {
        if let Some(pair) = load_pair(dir, file)? {
            return Ok(pair);
        }
        let pair = self.issue_client(cn, orgs)?;
        save_pair(dir, file, &pair)?;
        Ok(pair)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>> {
        let key = KeyPair::from_pem(&self.ca.key_pem)?;
        Ok(Issuer::from_ca_cert_pem(&self.ca.cert_pem, key)?)
    }

    /// A client certificate: CN is the user name, each O a group.
    pub fn issue_client(&self, cn: &str, orgs: &[&str]) -> Result<CertAndKey> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        for o in orgs {
            dn.push(DnType::OrganizationName, *o);
        }
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        (params.not_before, params.not_after) = validity(1);
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving certificate for the given names and addresses.
    pub fn issue_serving(&self, dns: &[String], ips: &[IpAddr]) -> Result<CertAndKey> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "k8rs");
        dn.push(DnType::OrganizationName, "k8rs");
        params.distinguished_name = dn;
        for d in dns {
            let name = d.clone().try_into().map_err(|e: rcgen::Error| e)?;
            params.subject_alt_names.push(SanType::DnsName(name));
        }
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        (params.not_before, params.not_after) = validity(1);
        let cert = params.signed_by(&key, &self.issuer()?)?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
