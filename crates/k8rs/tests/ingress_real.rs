//! The built-in Ingress controller for real: the demo app (`k8rs/demo`) in containers
//! of `k8rs server`'s agent, reached with curl through the node's Ingress ports by
//! path, by host, over TLS with SNI (a kubernetes.io/tls Secret made with openssl),
//! with objects created by the real kubectl. The node has a real address of this
//! machine. The controller listens on free ports (`--ingress-http-port 0`), read back
//! from the node's `k8rs-ingress` EndpointSlice, so the test can run beside others.
//! Needs root and scripts/deps.sh's packages; fails (never skips) without them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::node_at::NodeAt;

const BRIDGE: &str = "k8ing0";
const NODE: &str = "k8rs-ingress-test";

fn start_node() -> NodeAt {
    let args = [
        "--cluster-cidr=10.206.0.0/16",
        "--service-cidr=10.207.0.0/16",
        "--cluster-dns=10.207.0.10",
        &format!("--cni-bridge={BRIDGE}"),
        "--ingress-http-port=0",
        "--ingress-https-port=0",
        // The controller sends traffic to endpoints itself; no need for service rules
        // or names here.
        "--disable-kube-proxy",
        "--disable-dns",
    ];
    NodeAt::start(NODE, BRIDGE, None, "pods,svc,endpointslices,ingress", &args)
}

/// Runs curl; returns the HTTP status and the body, or 0 and curl's error.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    match code.trim().parse() {
        Ok(0) | Err(_) => (0, String::from_utf8_lossy(&out.stderr).into_owned()),
        Ok(code) => (code, body.to_string()),
    }
}

/// A self-signed certificate and key for `host`, made with openssl.
fn certificate(dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", &format!("/CN={host}")])
        .args(["-addext", &format!("subjectAltName=DNS:{host}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

const DEMO: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: demo}
  template:
    metadata:
      labels: {app: demo}
    spec:
      containers:
      - name: demo
        image: k8rs/demo
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: demo
spec:
  selector: {app: demo}
  ports:
  - {name: http, port: 8080, targetPort: http}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: demo
spec:
  rules:
  - http:
      paths:
      - path: /demo
        pathType: Prefix
        backend:
          service:
            name: demo
            port: {number: 8080}
"#;

const TLS_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: demo-tls
spec:
  ingressClassName: k8rs
  tls:
  - hosts: [demo.k8rs.test]
    secretName: demo-tls
  rules:
  - host: demo.k8rs.test
    http:
      paths:
      - path: /demo/hello
        pathType: Exact
        backend:
          service:
            name: demo
            port: {name: http}
"#;

#[test]
fn demo_app_through_the_ingress_by_path_host_and_tls() {
    let node = start_node();
    let s = node.server();

    // Where this node's controller listens, as it published it.
    let slice = format!("k8rs-ingress-{NODE}");
    let port = |name: &str| -> Option<u16> {
        let path = format!("{{.ports[?(@.name==\"{name}\")].port}}");
        node.jsonpath(
            &["get", "endpointslice", "-n", "kube-system", &slice],
            &path,
        )
        .parse()
        .ok()
    };
    let (http, https) = node.wait("the controller's ports", Duration::from_secs(30), || {
        Some((port("http")?, port("https")?))
    });
    let classes = s.kubectl_ok(&["get", "ingressclass", "k8rs", "-o", "wide"]);
    assert!(classes.contains("k8rs.io/ingress"), "{classes}");

    let applied = Instant::now();
    s.apply(DEMO);
    s.kubectl_ok(&["rollout", "status", "deployment/demo", "--timeout=120s"]);
    let base = format!("http://{}:{http}", node.ip);
    let hello = format!("{base}/demo/hello");
    let (status, body) = node.wait("200 from /demo/hello", Duration::from_secs(30), || {
        let (status, body) = curl(&[&hello]);
        (status == 200).then_some((status, body))
    });
    eprintln!(
        "apply → first 200 through the ingress: {:?}",
        applied.elapsed()
    );
    assert_eq!((status, body.as_str()), (200, "hello, world!\n"));

    // A path no rule matches; one the rule matches but the app does not serve.
    assert_eq!(curl(&[&format!("{base}/nothing")]).0, 404);
    assert_eq!(curl(&[&format!("{base}/demonstration")]).0, 404);
    let (status, body) = curl(&[&format!("{base}/demo/other")]);
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));

    // Round robin: both pods answer.
    for _ in 0..4 {
        assert_eq!(curl(&[&hello]).0, 200);
    }
    let pods = node.jsonpath(
        &["get", "pods", "-l", "app=demo"],
        "{.items[*].metadata.name}",
    );
    for pod in pods.split_whitespace() {
        let logs = s.kubectl_ok(&["logs", pod]);
        assert!(
            logs.contains("\"GET /demo/hello HTTP/1.1\" 200"),
            "{pod}: {logs}"
        );
    }

    // The default class was given on create; the status names the node.
    node.wait("the Ingress ADDRESS", Duration::from_secs(30), || {
        let row = s.kubectl_ok(&["get", "ingress", "demo", "--no-headers"]);
        let cells: Vec<&str> = row.split_whitespace().collect();
        (cells.get(1) == Some(&"k8rs") && cells.get(3) == Some(&node.ip.to_string().as_str()))
            .then_some(())
    });

    // TLS by SNI, from a kubernetes.io/tls Secret; the port is looked up by name.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "demo.k8rs.test");
    s.kubectl_ok(&[
        "create",
        "secret",
        "tls",
        "demo-tls",
        &format!("--cert={}", cert.display()),
        &format!("--key={}", key.display()),
    ]);
    s.apply(TLS_INGRESS);
    let resolve = format!("demo.k8rs.test:{https}:{}", node.ip);
    let ca = cert.to_str().unwrap();
    let url = format!("https://demo.k8rs.test:{https}/demo/hello");
    let (status, body) = node.wait("200 over TLS", Duration::from_secs(30), || {
        let (status, body) = curl(&["--resolve", &resolve, "--cacert", ca, &url]);
        (status == 200).then_some((status, body))
    });
    assert_eq!((status, body.as_str()), (200, "hello, world!\n"));
    let h2 = Command::new("curl")
        .args(["-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version}"])
        .args(["--resolve", &resolve, "--cacert", ca, &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&h2.stdout), "2", "HTTP/2 by ALPN");
    // Another name gets the default certificate, which the Secret's CA does not sign.
    let other = format!("other.k8rs.test:{https}:{}", node.ip);
    let url = format!("https://other.k8rs.test:{https}/demo/hello");
    let (status, error) = curl(&["--resolve", &other, "--cacert", ca, &url]);
    assert_eq!(status, 0, "{error}");
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(
        curl(&["--resolve", &other, "-k", &url]),
        (200, "hello, world!\n".into())
    );
    let row = s.kubectl_ok(&["get", "ingress", "demo-tls", "--no-headers"]);
    assert!(
        row.contains("demo.k8rs.test") && row.contains("80, 443"),
        "{row}"
    );

    // kubectl's own generator, with a host rule and a named port.
    s.kubectl_ok(&[
        "create",
        "ingress",
        "quick",
        "--rule=quick.k8rs.test/demo*=demo:http",
    ]);
    let quick = node.wait("the quick Ingress routes", Duration::from_secs(30), || {
        let r = curl(&["-H", "Host: quick.k8rs.test", &hello]);
        (r.0 == 200).then_some(r)
    });
    assert_eq!(quick.1, "hello, world!\n");
    assert_eq!(
        node.jsonpath(&["get", "ingress", "quick"], "{.spec.ingressClassName}"),
        "k8rs"
    );

    // Without the Service there is no backend to send to: 503.
    let deleted = Instant::now();
    s.kubectl_ok(&["delete", "service", "demo"]);
    node.wait("503 without the Service", Duration::from_secs(30), || {
        (curl(&[&hello]).0 == 503).then_some(())
    });
    eprintln!("service delete → 503: {:?}", deleted.elapsed());
}
