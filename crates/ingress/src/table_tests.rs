use super::*;
use serde_json::{Value, json};

fn arc<T: serde::de::DeserializeOwned>(v: Value) -> Arc<T> {
    Arc::new(serde_json::from_value(v).unwrap())
}

fn ingress(name: &str, created: &str, spec: Value) -> Arc<Ingress> {
    arc(json!({
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": spec,
    }))
}

fn backend(svc: &str, port: Value) -> Value {
    json!({"service": {"name": svc, "port": port}})
}

struct World {
    ingresses: Vec<Arc<Ingress>>,
    classes: Vec<Arc<IngressClass>>,
    services: Vec<Arc<Service>>,
    slices: Vec<Arc<EndpointSlice>>,
    secrets: Vec<Arc<Secret>>,
}

impl World {
    fn new() -> World {
        let class = crate::class::default_class();
        let svc = |name: &str, ip: &str| -> (Arc<Service>, Arc<EndpointSlice>) {
            (
                arc(json!({"metadata": {"name": name, "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})),
                arc(
                    json!({"metadata": {"name": format!("{name}-x"), "namespace": "default",
                        "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                    "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}]}),
                ),
            )
        };
        let (web, web_eps) = svc("web", "10.0.0.1");
        let (api, api_eps) = svc("api", "10.0.0.2");
        World {
            ingresses: Vec::new(),
            classes: vec![Arc::new(class)],
            services: vec![web, api],
            slices: vec![web_eps, api_eps],
            secrets: Vec::new(),
        }
    }

    fn build(&self, previous: Option<&Table>) -> Table {
        build(
            &Inputs {
                ingresses: &self.ingresses,
                classes: &self.classes,
                services: &self.services,
                slices: &self.slices,
                secrets: &self.secrets,
            },
            previous,
        )
    }
}

fn target(t: &Table, host: &str, path: &str) -> Option<String> {
    t.router
        .route(host, path)
        .map(|b| format!("{} {:?}", b.name, b.pool.addrs))
}

#[test]
fn rules_of_served_ingresses_resolve_to_endpoints() {
    let mut w = World::new();
    w.ingresses.push(ingress(
        "demo",
        "2025-01-01T00:00:00Z",
        json!({"rules": [{"http": {"paths": [
            {"path": "/demo", "pathType": "Prefix", "backend": backend("web", json!({"number": 80}))},
            {"path": "/api", "pathType": "Exact", "backend": backend("api", json!({"name": "http"}))},
            {"path": "/gone", "pathType": "Prefix", "backend": backend("missing", json!({"number": 80}))},
        ]}}]}),
    ));
    w.ingresses.push(ingress(
        "other-class",
        "2025-01-01T00:00:00Z",
        json!({"ingressClassName": "nginx", "defaultBackend": backend("api", json!({"number": 80}))}),
    ));
    let t = w.build(None);
    assert_eq!(
        target(&t, "x", "/demo/hello").unwrap(),
        "default/web:80 [10.0.0.1:8080]"
    );
    assert_eq!(
        target(&t, "x", "/api").unwrap(),
        "default/api:http [10.0.0.2:8080]"
    );
    assert_eq!(target(&t, "x", "/api/v1"), None);
    // A missing Service is a backend without endpoints (503), not a miss (404).
    assert_eq!(target(&t, "x", "/gone").unwrap(), "default/missing:80 []");
    // The nginx-class Ingress's default backend is not ours.
    assert_eq!(target(&t, "x", "/elsewhere"), None);
}

#[test]
fn the_oldest_ingress_wins_ties_and_gives_the_default_backend() {
    let mut w = World::new();
    let spec = |svc: &str| {
        json!({"defaultBackend": backend(svc, json!({"number": 80})),
            "rules": [{"host": "a.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend(svc, json!({"number": 80}))}]}}]})
    };
    w.ingresses
        .push(ingress("newer", "2025-06-01T00:00:00Z", spec("api")));
    w.ingresses
        .push(ingress("older", "2025-01-01T00:00:00Z", spec("web")));
    let t = w.build(None);
    assert!(
        target(&t, "a.example.com", "/")
            .unwrap()
            .starts_with("default/web:80")
    );
    assert!(
        target(&t, "b.example.com", "/")
            .unwrap()
            .starts_with("default/web:80")
    );
}

#[test]
fn unchanged_backends_keep_their_place_in_the_rotation() {
    let mut w = World::new();
    w.ingresses.push(ingress(
        "demo",
        "2025-01-01T00:00:00Z",
        json!({"defaultBackend": backend("web", json!({"number": 80}))}),
    ));
    let first = w.build(None);
    let b1 = first.router.route("x", "/").unwrap().clone();
    let second = w.build(Some(&first));
    assert!(Arc::ptr_eq(&b1, second.router.route("x", "/").unwrap()));
    // New endpoints: a new pool.
    w.slices.pop();
    w.slices.pop();
    let third = w.build(Some(&second));
    let b3 = third.router.route("x", "/").unwrap();
    assert!(!Arc::ptr_eq(&b1, b3));
    assert!(b3.pool.addrs.is_empty());
}

#[test]
fn tls_secrets_of_served_ingresses_give_certificates() {
    let mut w = World::new();
    let c = rcgen::generate_simple_self_signed(vec!["a.example.com".to_string()]).unwrap();
    let b64 = |s: String| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    w.secrets.push(arc(json!({
        "metadata": {"name": "a-tls", "namespace": "default", "resourceVersion": "7"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(c.cert.pem()), "tls.key": b64(c.signing_key.serialize_pem())},
    })));
    w.secrets.push(arc(json!({
        "metadata": {"name": "broken", "namespace": "default", "resourceVersion": "8"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64("junk".into()), "tls.key": b64("junk".into())},
    })));
    w.ingresses.push(ingress(
        "tls",
        "2025-01-01T00:00:00Z",
        json!({"tls": [
            {"hosts": ["a.example.com"], "secretName": "a-tls"},
            {"hosts": ["b.example.com"], "secretName": "broken"},
            {"hosts": ["c.example.com"], "secretName": "absent"},
        ]}),
    ));
    let t = w.build(None);
    assert!(t.certs.find(Some("a.example.com")).is_some());
    assert!(t.certs.find(Some("b.example.com")).is_none());
    assert!(t.certs.find(Some("c.example.com")).is_none());
    // Parsed once per resourceVersion.
    let again = w.build(Some(&t));
    let same = again.certs.find(Some("a.example.com")).unwrap();
    assert!(Arc::ptr_eq(
        &same,
        &t.certs.find(Some("a.example.com")).unwrap()
    ));
}
