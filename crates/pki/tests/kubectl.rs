//! Kubeconfigs as the real kubectl reads them: the admin kubeconfig we write, a
//! `~/.kube/config` we merge into, and kubectl authenticating with our certificates
//! against a server using our TLS configuration.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use base64::Engine;
use pki::{ClusterPki, ServerPkiOptions, kubeconfig};
use serde_json::Value;
use support::{TIMEOUT, run, serve};

fn kubectl(home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("kubectl");
    cmd.args(args).env("HOME", home).env_remove("KUBECONFIG");
    let (ok, out, err) = run(&mut cmd);
    assert!(ok, "kubectl {args:?} failed: {err}");
    out
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn kubectl_reads_written_and_merged_kubeconfigs() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let pki = ClusterPki::ensure(&home.join("tls"), &ServerPkiOptions::default()).unwrap();
    let cfg = kubeconfig::render(
        kubeconfig::DEFAULT_NAME,
        "https://127.0.0.1:6443",
        &pki.ca.cert_pem,
        &pki.admin,
    );

    let admin = home.join("etc/k8rs/k8rs.yaml");
    kubeconfig::write(&admin, &cfg).unwrap();
    let f = admin.to_str().unwrap();
    assert_eq!(
        kubectl(home, &["config", "current-context", "--kubeconfig", f]).trim(),
        "k8rs"
    );
    let view: Value = serde_json::from_str(&kubectl(
        home,
        &["config", "view", "--kubeconfig", f, "-o", "json"],
    ))
    .unwrap();
    assert_eq!(
        view["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    assert_eq!(view["contexts"][0]["context"]["user"], "k8rs");
    let raw: Value = serde_json::from_str(&kubectl(
        home,
        &["config", "view", "--raw", "--kubeconfig", f, "-o", "json"],
    ))
    .unwrap();
    assert_eq!(
        raw["clusters"][0]["cluster"]["certificate-authority-data"],
        b64(&pki.ca.cert_pem)
    );
    assert_eq!(
        raw["users"][0]["user"]["client-certificate-data"],
        b64(&pki.admin.cert_pem)
    );
    assert_eq!(
        raw["users"][0]["user"]["client-key-data"],
        b64(&pki.admin.key_pem)
    );

    // Merge into a user's config that kubectl itself wrote.
    let user_cfg = home.join(".kube/config");
    let u = user_cfg.to_str().unwrap();
    for args in [
        &[
            "config",
            "set-cluster",
            "prod",
            "--server=https://prod.example:443",
            "--kubeconfig",
            u,
        ][..],
        &[
            "config",
            "set-credentials",
            "ops",
            "--token=12345",
            "--kubeconfig",
            u,
        ],
        &[
            "config",
            "set-context",
            "prod",
            "--cluster=prod",
            "--user=ops",
            "--namespace=web",
            "--kubeconfig",
            u,
        ],
        &["config", "use-context", "prod", "--kubeconfig", u],
        &[
            "config",
            "set",
            "preferences.colors",
            "true",
            "--kubeconfig",
            u,
        ],
    ] {
        kubectl(home, args);
    }
    let before: Value = serde_json::from_str(&kubectl(
        home,
        &["config", "view", "--raw", "--kubeconfig", u, "-o", "json"],
    ))
    .unwrap();
    kubeconfig::merge(&user_cfg, &cfg).unwrap();
    kubeconfig::merge(&user_cfg, &cfg).unwrap();

    assert_eq!(
        kubectl(home, &["config", "current-context", "--kubeconfig", u]).trim(),
        "k8rs"
    );
    let mut contexts: Vec<String> = kubectl(
        home,
        &["config", "get-contexts", "-o", "name", "--kubeconfig", u],
    )
    .lines()
    .map(str::to_string)
    .collect();
    contexts.sort();
    assert_eq!(contexts, ["k8rs", "prod"]);
    let after: Value = serde_json::from_str(&kubectl(
        home,
        &["config", "view", "--raw", "--kubeconfig", u, "-o", "json"],
    ))
    .unwrap();
    let named = |v: &Value, list: &str, name: &str| {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
    };
    for (list, name) in [("clusters", "prod"), ("users", "ops"), ("contexts", "prod")] {
        assert_eq!(
            named(&after, list, name),
            named(&before, list, name),
            "{list}/{name} kept"
        );
    }
    assert_eq!(
        named(&after, "users", "ops").unwrap()["user"]["token"],
        "12345"
    );
    assert_eq!(after["preferences"], before["preferences"]);
    // kubectl can go on editing the merged file.
    kubectl(home, &["config", "use-context", "prod", "--kubeconfig", u]);
    assert_eq!(
        kubectl(home, &["config", "current-context", "--kubeconfig", u]).trim(),
        "prod"
    );
}

#[test]
fn kubectl_authenticates_with_the_admin_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let pki = ClusterPki::ensure(&home.join("tls"), &ServerPkiOptions::default()).unwrap();
    // The test server speaks HTTP/1.1 only, so keep kubectl off h2.
    let mut config = (*pki::tls::server_config(&pki.serving, pki.client_ca_pem()).unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (addr, rx) = serve(Arc::new(config));

    let server = format!("https://127.0.0.1:{}", addr.port());
    let path = home.join("admin.yaml");
    kubeconfig::write(
        &path,
        &kubeconfig::render("k8rs", &server, &pki.ca.cert_pem, &pki.admin),
    )
    .unwrap();
    let out = kubectl(
        home,
        &[
            "version",
            "-o",
            "json",
            "--request-timeout=15s",
            "--kubeconfig",
            path.to_str().unwrap(),
        ],
    );
    let version: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.33.0", "{out}");
    let seen = rx.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(seen.path, "/version");
    assert_eq!(
        seen.user,
        Some(("system:admin".into(), vec!["system:masters".into()]))
    );

    // Against a server whose CA it was not given, kubectl refuses.
    let other = pki::CertificateAuthority::generate("other").unwrap();
    let bad = home.join("bad.yaml");
    kubeconfig::write(
        &bad,
        &kubeconfig::render("k8rs", &server, &other.cert_pem, &pki.admin),
    )
    .unwrap();
    let mut cmd = Command::new("kubectl");
    cmd.args([
        "version",
        "-o",
        "json",
        "--request-timeout=15s",
        "--kubeconfig",
        bad.to_str().unwrap(),
    ])
    .env("HOME", home)
    .env_remove("KUBECONFIG");
    let (_, out, err) = run(&mut cmd);
    assert!(!out.contains("serverVersion"), "{out}");
    assert!(err.contains("certificate"), "{err}");
}
