use super::*;
use crate::files::mode;
use std::time::Duration;

const FILES: &[&str] = &[
    "server-ca.crt",
    "server-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "serving-kube-apiserver.crt",
    "serving-kube-apiserver.key",
    "client-admin.crt",
    "client-admin.key",
    "client-kube-apiserver.crt",
    "client-kube-apiserver.key",
    "client-auth-proxy.crt",
    "client-auth-proxy.key",
    "service.key",
];

fn opts(ips: &[&str]) -> ServerPkiOptions {
    ServerPkiOptions {
        dns_names: vec!["Node-1".into(), "192.168.5.5".into()],
        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
    }
}

#[test]
fn first_start_creates_everything_private() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("server/tls");
    let pki = ClusterPki::ensure(&tls, &opts(&["10.0.0.7", "10.43.0.1"])).unwrap();
    assert_eq!(mode(&tls), 0o700);
    for f in FILES {
        assert_eq!(mode(&tls.join(f)), 0o600, "{f}");
    }
    assert_eq!(
        std::fs::read_dir(&tls).unwrap().count(),
        FILES.len(),
        "no stray files"
    );

    let serving = pki.serving.check().unwrap();
    assert_eq!(serving.common_name.as_deref(), Some("kube-apiserver"));
    for dns in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "node-1",
    ] {
        assert!(
            serving.dns_names.iter().any(|d| d == dns),
            "{dns}: {serving:?}"
        );
    }
    for ip in ["127.0.0.1", "::1", "10.0.0.7", "10.43.0.1", "192.168.5.5"] {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(serving.ip_addresses.contains(&ip), "{ip}");
    }
    assert!(pki.ca.signed(&pki.serving.cert_pem));

    let admin = pki.admin.check().unwrap();
    assert_eq!(admin.common_name.as_deref(), Some("system:admin"));
    assert_eq!(admin.organizations, ["system:masters"]);
    let kubelet_client = pki.apiserver_kubelet_client.check().unwrap();
    assert_eq!(
        kubelet_client.common_name.as_deref(),
        Some("system:apiserver")
    );
    assert!(
        pki.request_header_ca
            .signed(&pki.auth_proxy_client.cert_pem)
    );
    assert!(!pki.ca.signed(&pki.auth_proxy_client.cert_pem));
    assert_eq!(pki.client_ca_pem(), pki.ca.cert_pem);
}

#[test]
fn later_starts_reuse_and_reissue_only_the_serving_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = ClusterPki::ensure(dir.path(), &opts(&["10.0.0.7"])).unwrap();
    let again = ClusterPki::ensure(dir.path(), &opts(&["10.0.0.7"])).unwrap();
    assert_eq!(again.ca, first.ca);
    assert_eq!(again.serving, first.serving);
    assert_eq!(again.admin, first.admin);
    assert_eq!(
        again.service_account_key.key_id(),
        first.service_account_key.key_id()
    );

    // Same names in another order, another case: nothing changes.
    let mut shuffled = opts(&["10.0.0.7"]);
    shuffled.dns_names.reverse();
    shuffled.dns_names.push("NODE-1".into());
    assert_eq!(
        ClusterPki::ensure(dir.path(), &shuffled).unwrap().serving,
        first.serving
    );

    // A new node IP: new serving certificate, same CA and clients.
    let moved = ClusterPki::ensure(dir.path(), &opts(&["10.0.0.8"])).unwrap();
    assert_ne!(moved.serving, first.serving);
    assert_eq!(moved.ca, first.ca);
    assert_eq!(moved.admin, first.admin);
    let ips = moved.serving.info().unwrap().ip_addresses;
    assert!(ips.contains(&"10.0.0.8".parse().unwrap()));
    assert!(!ips.contains(&"10.0.0.7".parse().unwrap()));
    assert!(moved.ca.signed(&moved.serving.cert_pem));
}

#[test]
fn a_new_ca_reissues_what_the_old_one_signed() {
    let dir = tempfile::tempdir().unwrap();
    let first = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
    std::fs::remove_file(dir.path().join("server-ca.crt")).unwrap();
    std::fs::remove_file(dir.path().join("server-ca.key")).unwrap();
    let second = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
    assert_ne!(second.ca, first.ca);
    for leaf in [
        &second.serving,
        &second.admin,
        &second.apiserver_kubelet_client,
    ] {
        assert!(second.ca.signed(&leaf.cert_pem));
    }
    assert_eq!(
        second.auth_proxy_client, first.auth_proxy_client,
        "other CA, kept"
    );
}

#[test]
fn expiring_mismatched_or_renamed_leaves_are_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let first = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
    let write = |name: &str, pair: &CertAndKey| save_pair(dir.path(), name, pair).unwrap();

    let short =
        LeafSpec::client(users::ADMIN, &[users::MASTERS]).valid_for(Duration::from_secs(86400));
    write("client-admin", &first.ca.issue(&short).unwrap());
    let renewed = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap().admin;
    assert!(
        renewed.info().unwrap().not_after - now() > 300 * 86400,
        "renewed for a year"
    );

    // A crash between writing the key and the certificate leaves a mismatched pair.
    let other = first.issue_client(users::ADMIN, &[users::MASTERS]).unwrap();
    write(
        "client-admin",
        &CertAndKey {
            cert_pem: other.cert_pem,
            key_pem: renewed.key_pem.clone(),
        },
    );
    let fixed = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap().admin;
    fixed.check().unwrap();

    // The seed version named this user system:kube-apiserver.
    write(
        "client-kube-apiserver",
        &first
            .issue_client("system:kube-apiserver", &[users::MASTERS])
            .unwrap(),
    );
    let pki = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
    let cn = pki.apiserver_kubelet_client.info().unwrap().common_name;
    assert_eq!(cn.as_deref(), Some("system:apiserver"));
}

#[test]
fn corrupt_files_are_errors_naming_them() {
    for (file, content) in [
        ("server-ca.crt", "garbage"),
        (
            "server-ca.key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
        ("client-admin.crt", ""),
        ("serving-kube-apiserver.key", "nope"),
        ("service.key", "nope"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
        std::fs::write(dir.path().join(file), content).unwrap();
        let err = ClusterPki::ensure(dir.path(), &opts(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(file), "{file}: {err}");
    }

    // A CA key that belongs to another certificate.
    let dir = tempfile::tempdir().unwrap();
    ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
    let other = CertificateAuthority::generate("x").unwrap();
    std::fs::write(dir.path().join("server-ca.key"), other.key_pem()).unwrap();
    let err = ClusterPki::ensure(dir.path(), &opts(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server-ca.key") && err.contains("does not belong"),
        "{err}"
    );

    // Half a CA.
    std::fs::remove_file(dir.path().join("server-ca.key")).unwrap();
    let err = ClusterPki::ensure(dir.path(), &opts(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server-ca.key") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn issues_node_and_component_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ClusterPki::ensure(dir.path(), &opts(&[])).unwrap();
    let client = pki.issue_kubelet_client("node-1").unwrap().check().unwrap();
    assert_eq!(client.common_name.as_deref(), Some("system:node:node-1"));
    assert_eq!(client.organizations, ["system:nodes"]);
    let serving = pki
        .issue_kubelet_serving("node-1", &["node-1".into()], &["10.0.0.9".parse().unwrap()])
        .unwrap();
    let info = serving.check().unwrap();
    assert!(info.server_auth && !info.client_auth);
    assert_eq!(info.dns_names, ["node-1"]);
    assert!(pki.ca.signed(&serving.cert_pem));

    let spec = LeafSpec::client(users::KUBE_SCHEDULER, &[]);
    let sched = pki.ensure_leaf("client-scheduler", &spec).unwrap();
    assert_eq!(pki.ensure_leaf("client-scheduler", &spec).unwrap(), sched);
    assert_eq!(mode(&dir.path().join("client-scheduler.key")), 0o600);
}
