//! A real `k8rs server` on a free port, driven by the installed kubectl: the cluster
//! comes up with its system namespaces, services, accounts and component health, and
//! the basic verbs work over TLS with the admin client certificate.

mod support;

use std::time::Duration;

use support::{Server, wait_for};

#[test]
fn cluster_comes_up_like_upstream() {
    let s = Server::start();
    let info = s.kubectl_ok(&["cluster-info"]);
    assert!(
        info.contains("Kubernetes control plane is running at https://127.0.0.1:"),
        "{info}"
    );

    let ns = s.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    let svc = s.kubectl_ok(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].port}",
    ]);
    assert_eq!(svc, "10.43.0.1 443");
    let eps = s.kubectl_ok(&[
        "get",
        "endpoints",
        "kubernetes",
        "-o",
        "jsonpath={.subsets[0].addresses[0].ip}",
    ]);
    assert_eq!(eps, "127.0.0.1");

    // The controllers fill in every namespace's default account and root CA.
    wait_for("default service accounts", Duration::from_secs(30), || {
        let out = s.kubectl_ok(&["get", "serviceaccounts", "-A", "-o", "name"]);
        (out.lines()
            .filter(|l| *l == "serviceaccount/default")
            .count()
            == 4)
            .then_some(())
    });
    let ca = s.kubectl_ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");

    let cs = wait_for("healthy components", Duration::from_secs(30), || {
        let out = s.kubectl_ok(&["get", "componentstatuses"]);
        (out.matches("Healthy").count() == 3).then_some(out)
    });
    assert!(cs.contains("etcd-0"), "{cs}");

    let resources = s.kubectl_ok(&["api-resources"]);
    for r in [
        "pods",
        "deployments",
        "customresourcedefinitions",
        "leases",
        "endpointslices",
    ] {
        assert!(resources.contains(r), "{resources}");
    }
}

#[test]
fn files_and_kubeconfigs_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start();
    for f in [
        "server/tls/server-ca.key",
        "server/tls/server-ca.crt",
        "server/tls/client-admin.key",
        "server/token",
    ] {
        let mode = std::fs::metadata(s.data_dir().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    assert_eq!(
        std::fs::metadata(&s.kubeconfig)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The k8rs context was merged into ~/.kube/config and made current.
    let merged = std::fs::read_to_string(s.home().join(".kube/config")).unwrap();
    assert!(merged.contains("current-context: k8rs"), "{merged}");
}

#[test]
fn crud_and_errors_over_tls() {
    let s = Server::start();
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","labels":{"tier":"web"}},"data":{"a":"b"}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], cm);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.kubectl_stdin(&["create", "-f", "-"], cm);
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"configmaps "cm1" already exists"#));
    let err = s.kubectl_err(&["get", "configmap", "missing"]);
    assert!(err.contains(r#"configmaps "missing" not found"#), "{err}");
    let err = s.kubectl_err(&["get", "pods", "-l", "a b"]);
    assert!(err.contains("unable to parse requirement"), "{err}");
    let err = s.kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(err.contains("field label not supported"), "{err}");
    s.kubectl_ok(&["label", "configmap", "cm1", "tier=db", "--overwrite"]);
    assert_eq!(
        s.kubectl_ok(&["get", "cm", "-l", "tier=db", "-o", "name"])
            .trim(),
        "configmap/cm1"
    );
    s.kubectl_ok(&["annotate", "configmap", "cm1", "note=hi"]);
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "cm1",
        "--type=merge",
        "-p",
        r#"{"data":{"c":"d"}}"#,
    ]);
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "cm1",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/data/a"}]"#,
    ]);
    let data = s.kubectl_ok(&["get", "cm", "cm1", "-o", "jsonpath={.data}"]);
    assert_eq!(data, r#"{"c":"d"}"#);
    s.kubectl_ok(&["delete", "configmap", "cm1"]);
    assert!(s.kubectl_err(&["get", "cm", "cm1"]).contains("not found"));
}

#[test]
fn openapi_explain_and_field_validation() {
    let s = Server::start();
    let explained = s.kubectl_ok(&["explain", "deployment.spec.strategy"]);
    assert!(
        explained.contains("KIND:       Deployment") && explained.contains("rollingUpdate"),
        "{explained}"
    );
    let bad = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"},"data":{"a":"b"},"dataa":{}}"#;
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "strict validation refuses unknown fields"
    );
    assert!(
        err.contains(r#"strict decoding error: unknown field "dataa""#),
        "{err}"
    );
    let out = s.kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], bad);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"Warning: unknown field "dataa""#));
    let edited = s
        .kubectl_cmd(&["edit", "configmap", "cm"])
        .env("KUBE_EDITOR", "sed -i s/a:\\ b/a:\\ edited/")
        .output()
        .unwrap();
    assert!(
        edited.status.success(),
        "{}",
        String::from_utf8_lossy(&edited.stderr)
    );
    assert_eq!(
        s.kubectl_ok(&["get", "cm", "cm", "-o", "jsonpath={.data.a}"]),
        "edited"
    );
}
