//! The cluster PKI kept in one directory: created on first start, reused after.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::ca::{CertificateAuthority, LeafSpec, RENEW_BEFORE};
use crate::certs::{CertAndKey, CertInfo};
use crate::files::{ensure_private_dir, read, write_private};
use crate::jwt::ServiceAccountKey;
use crate::{Error, Result, users};

/// What the API server's serving certificate must cover besides the fixed names
/// (`kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
/// `kubernetes.default.svc.cluster.local`, `localhost`, `127.0.0.1`, `::1`).
#[derive(Clone, Debug, Default)]
pub struct ServerPkiOptions {
    /// Host names: the node's hostname and name, `--tls-san` names. Entries that parse
    /// as IP addresses count as addresses.
    pub dns_names: Vec<String>,
    /// The node's addresses and the first service IP (`10.43.0.1` by default).
    pub ips: Vec<IpAddr>,
}

/// Names every API server certificate carries (upstream's and k3s's).
const FIXED_DNS: &[&str] = &[
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
];
const FIXED_IPS: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// The cluster PKI as kept in [`ClusterPki::dir`]; see the crate docs for the files.
#[derive(Clone, Debug)]
pub struct ClusterPki {
    pub dir: PathBuf,
    /// The cluster CA (`server-ca`): signs serving and client certificates; the CA in
    /// kubeconfigs, in pods' `ca.crt`, and whose hash the join token carries.
    pub ca: CertificateAuthority,
    /// The front-proxy CA (`--requestheader-client-ca-file`).
    pub request_header_ca: CertificateAuthority,
    /// The API server's serving certificate.
    pub serving: CertAndKey,
    /// `system:admin` in `system:masters`, for the admin kubeconfig.
    pub admin: CertAndKey,
    /// The API server's client certificate towards kubelets (`system:apiserver` in
    /// `system:masters`, as k3s).
    pub apiserver_kubelet_client: CertAndKey,
    /// The front proxy's client certificate (`system:auth-proxy`), signed by
    /// `request_header_ca`.
    pub auth_proxy_client: CertAndKey,
    /// Signs service account tokens.
    pub service_account_key: ServiceAccountKey,
}

fn bad(path: &Path, e: Error) -> Error {
    let reason = match e {
        Error::BadPem(reason) => reason,
        other => other.to_string(),
    };
    Error::BadFile {
        path: path.to_path_buf(),
        reason,
    }
}

fn pair_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

fn save_pair(dir: &Path, name: &str, pair: &CertAndKey) -> Result<()> {
    let (crt, key) = pair_paths(dir, name);
    write_private(&key, pair.key_pem.as_bytes())?;
    write_private(&crt, pair.cert_pem.as_bytes())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Loads the cluster CA of an existing server's certificate directory (for signing
/// client certificates outside the server, e.g. colleagues' kubeconfigs).
pub fn load_server_ca(dir: &Path) -> Result<CertificateAuthority> {
    let (crt_path, key_path) = pair_paths(dir, "server-ca");
    let missing = |p: &Path| Error::BadFile {
        path: p.to_path_buf(),
        reason: "missing: is this a k8rs server's data directory?".into(),
    };
    let cert_pem = read(&crt_path)?.ok_or_else(|| missing(&crt_path))?;
    let key_pem = read(&key_path)?.ok_or_else(|| missing(&key_path))?;
    CertificateAuthority::from_pem(cert_pem, key_pem).map_err(|e| bad(&key_path, e))
}

/// Loads the CA `name`, or creates it when neither file exists. Returns whether it
/// was created (then everything it signed must be reissued).
fn ensure_ca(dir: &Path, name: &str, common_name: &str) -> Result<(CertificateAuthority, bool)> {
    let (crt_path, key_path) = pair_paths(dir, name);
    match (read(&crt_path)?, read(&key_path)?) {
        (None, None) => {
            let ca = CertificateAuthority::generate(&format!("{common_name}@{}", now()))?;
            save_pair(dir, name, &ca.cert_and_key())?;
            Ok((ca, true))
        }
        (Some(_), None) | (None, Some(_)) => {
            let (missing, present) = match read(&crt_path)? {
                Some(_) => (&key_path, &crt_path),
                None => (&crt_path, &key_path),
            };
            Err(Error::BadFile {
                path: missing.clone(),
                reason: format!(
                    "missing while {} exists; restore it, or remove both to create a new CA \
                     (every certificate it signed is then reissued)",
                    present.display()
                ),
            })
        }
        (Some(cert_pem), Some(key_pem)) => {
            let info = CertInfo::from_pem(&cert_pem).map_err(|e| bad(&crt_path, e))?;
            if !info.is_ca {
                return Err(bad(&crt_path, Error::BadPem("not a CA certificate".into())));
            }
            let pair = CertAndKey { cert_pem, key_pem };
            pair.check().map_err(|e| bad(&key_path, e))?;
            let ca = CertificateAuthority::from_pem(pair.cert_pem, pair.key_pem)
                .map_err(|e| bad(&key_path, e))?;
            Ok((ca, false))
        }
    }
}

/// Loads the leaf `name` if it is still what `spec` asks for, signed by `ca` and not
/// close to expiry; otherwise issues and saves a new one.
fn ensure_leaf(
    dir: &Path,
    name: &str,
    ca: &CertificateAuthority,
    spec: &LeafSpec,
    force: bool,
) -> Result<CertAndKey> {
    let (crt_path, key_path) = pair_paths(dir, name);
    if let (Some(cert_pem), Some(key_pem)) = (read(&crt_path)?, read(&key_path)?) {
        let info = CertInfo::from_pem(&cert_pem).map_err(|e| bad(&crt_path, e))?;
        rcgen::KeyPair::from_pem(&key_pem)
            .map_err(|e| bad(&key_path, Error::BadPem(e.to_string())))?;
        let pair = CertAndKey { cert_pem, key_pem };
        // A pair that parses but does not match is what a crash between the two
        // writes leaves: reissue rather than fail.
        let current = !force
            && pair.check().is_ok()
            && spec.matches(&info)
            && ca.signed(&pair.cert_pem)
            && info.not_after - now() > RENEW_BEFORE.as_secs() as i64;
        if current {
            return Ok(pair);
        }
    }
    let pair = ca.issue(spec)?;
    save_pair(dir, name, &pair)?;
    Ok(pair)
}

fn ensure_service_account_key(dir: &Path) -> Result<ServiceAccountKey> {
    let path = dir.join("service.key");
    match read(&path)? {
        Some(pem) => ServiceAccountKey::from_pem(&pem).map_err(|e| bad(&path, e)),
        None => {
            let key = ServiceAccountKey::generate()?;
            write_private(&path, key.to_pem().as_bytes())?;
            Ok(key)
        }
    }
}

/// The serving certificate's names: the fixed ones and the caller's, IPs split out.
fn serving_spec(opts: &ServerPkiOptions) -> LeafSpec {
    let mut dns: Vec<String> = FIXED_DNS.iter().map(|s| s.to_string()).collect();
    let mut ips: Vec<IpAddr> = FIXED_IPS.to_vec();
    ips.extend(opts.ips.iter().copied());
    for name in opts
        .dns_names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
    {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.to_ascii_lowercase()),
        }
    }
    dns.sort();
    dns.dedup();
    ips.sort();
    ips.dedup();
    LeafSpec::server("kube-apiserver", &dns, &ips)
}

impl ClusterPki {
    /// Loads the PKI from `dir`, creating what is missing (see the crate docs for what
    /// is reissued when). Errors name the file at fault.
    pub fn ensure(dir: &Path, opts: &ServerPkiOptions) -> Result<Self> {
        ensure_private_dir(dir)?;
        let (ca, new_ca) = ensure_ca(dir, "server-ca", "k8rs-server-ca")?;
        let (request_header_ca, new_rh) =
            ensure_ca(dir, "request-header-ca", "k8rs-request-header-ca")?;
        let serving = ensure_leaf(
            dir,
            "serving-kube-apiserver",
            &ca,
            &serving_spec(opts),
            new_ca,
        )?;
        let admin = ensure_leaf(
            dir,
            "client-admin",
            &ca,
            &LeafSpec::client(users::ADMIN, &[users::MASTERS]),
            new_ca,
        )?;
        let apiserver_kubelet_client = ensure_leaf(
            dir,
            "client-kube-apiserver",
            &ca,
            &LeafSpec::client(users::APISERVER, &[users::MASTERS]),
            new_ca,
        )?;
        let auth_proxy_client = ensure_leaf(
            dir,
            "client-auth-proxy",
            &request_header_ca,
            &LeafSpec::client(users::AUTH_PROXY, &[]),
            new_rh,
        )?;
        let service_account_key = ensure_service_account_key(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ca,
            request_header_ca,
            serving,
            admin,
            apiserver_kubelet_client,
            auth_proxy_client,
            service_account_key,
        })
    }

    /// The CA that verifies client certificates (today the cluster CA itself).
    pub fn client_ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    /// A client certificate for user `common_name` in groups `organizations`, valid
    /// for a year. Not saved.
    pub fn issue_client(&self, common_name: &str, organizations: &[&str]) -> Result<CertAndKey> {
        self.ca.issue(&LeafSpec::client(common_name, organizations))
    }

    /// A kubelet's client certificate: `system:node:<node>` in `system:nodes`.
    pub fn issue_kubelet_client(&self, node_name: &str) -> Result<CertAndKey> {
        self.ca
            .issue(&LeafSpec::client(users::node(node_name), &[users::NODES]))
    }

    /// A kubelet's serving certificate for its names and addresses, with the subject
    /// upstream's kubelet-serving signer requires (`system:node:<node>`, `system:nodes`).
    pub fn issue_kubelet_serving(
        &self,
        node_name: &str,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<CertAndKey> {
        self.ca.issue(
            &LeafSpec::server(users::node(node_name), dns_names, ips)
                .organizations(&[users::NODES]),
        )
    }

    /// The certificate `<name>.crt`/`<name>.key` in the PKI directory, reused while it
    /// still matches `spec` (reissued like the built-in ones): for component
    /// identities that should survive restarts (controller manager, scheduler, …).
    pub fn ensure_leaf(&self, name: &str, spec: &LeafSpec) -> Result<CertAndKey> {
        ensure_leaf(&self.dir, name, &self.ca, spec, false)
    }
}

#[cfg(test)]
mod tests;
