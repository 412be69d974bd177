//! The API layer driven by the real kubectl over plain HTTP (in-process server, memory
//! store): discovery, CRUD, errors, tables.

use testkit::TestServer;

const CM1: &str =
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1"},"data":{"a":"b"}}"#;
const NODEPORT_SVC: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
  "spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}}"#;

#[test]
fn discovery_and_basic_crud() {
    let s = TestServer::start();
    let resources = s.ok(&["api-resources"]);
    assert!(
        resources.contains("deployments") && resources.contains("deploy"),
        "{resources}"
    );
    let versions = s.ok(&["api-versions"]);
    assert!(versions.contains("apps/v1"), "{versions}");
    let ns = s.ok(&["get", "namespaces"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(n), "{ns}");
    }
    let out = s.stdin(&["create", "-f", "-"], CM1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = s.ok(&["get", "configmap", "cm1", "-o", "jsonpath={.data.a}"]);
    assert_eq!(got, "b");
    let out = s.stdin(&["create", "-f", "-"], CM1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"configmaps "cm1" already exists"#), "{err}");
    let err = s.err(&["get", "configmap", "nope"]);
    assert!(err.contains(r#"configmaps "nope" not found"#), "{err}");
    s.ok(&["label", "configmap", "cm1", "tier=web"]);
    let listed = s.ok(&["get", "cm", "-l", "tier=web", "-o", "name"]);
    assert_eq!(listed.trim(), "configmap/cm1");
    s.ok(&["delete", "configmap", "cm1"]);
    let err = s.err(&["get", "configmap", "cm1"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn services_get_cluster_ips() {
    let s = TestServer::start();
    let svc = s.ok(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    assert_eq!(svc, "10.43.0.1");
    let out = s.stdin(&["create", "-f", "-"], NODEPORT_SVC);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ip = s.ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}",
    ]);
    let mut parts = ip.split(' ');
    assert!(parts.next().unwrap().starts_with("10.43."), "{ip}");
    let port: u16 = parts.next().unwrap().parse().unwrap();
    assert!((30000..=32767).contains(&port));
}
