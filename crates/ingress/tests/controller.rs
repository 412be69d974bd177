//! The controller against a real API server (in-process, memory store) and real
//! sockets: backends are small HTTP servers on loopback addresses, named by a
//! selectorless Service and EndpointSlices of our own, so the whole request path —
//! routing, round robin, forwarded headers, TLS by SNI, 404/503, the status — runs
//! without containers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::TestServer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// An HTTP server answering `<name> <path> xff=<X-Forwarded-For> proto=<..> host=<Host>`,
/// and `Upgrade` requests with 101 and an echo of every byte.
async fn backend(ip: &str, name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(name, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

type Reply = hyper::Response<http_body_util::Full<Bytes>>;

async fn answer(
    name: &str,
    mut req: hyper::Request<hyper::body::Incoming>,
) -> Result<Reply, std::convert::Infallible> {
    if req.headers().contains_key("upgrade") {
        let upgraded = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = TokioIo::new(upgraded.await.unwrap());
            let (mut r, mut w) = tokio::io::split(&mut io);
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        let resp = hyper::Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        return Ok(resp);
    }
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    let body = format!(
        "{name} {} xff={} proto={} host={}",
        req.uri().path(),
        h("x-forwarded-for"),
        h("x-forwarded-proto"),
        h("host")
    );
    Ok(hyper::Response::new(http_body_util::Full::new(
        Bytes::from(body),
    )))
}

/// One GET over `stream`; the status and body.
async fn get<S>(stream: S, host: &str, path: &str) -> (u16, String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", host)
        .header("x-forwarded-for", "6.6.6.6")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn http_get(addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    get(TcpStream::connect(addr).await.unwrap(), host, path).await
}

/// A TLS connection with `sni`, trusting only `ca_pem`.
async fn tls(
    addr: SocketAddr,
    sni: &str,
    ca_pem: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn routes_balances_terminates_tls_and_writes_status() {
    // The API server has its own runtime, which cannot start inside the test's.
    let server = TestServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(scenario(&server));
}

async fn scenario(server: &TestServer) {
    let client = server.client();

    // A Ready node for the controller, at 127.0.0.1.
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "n1"}})),
        )
        .await
        .unwrap();
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    nodes
        .patch_status("n1", &PatchParams::default(), &Patch::Merge(&ready))
        .await
        .unwrap();

    let _cluster = ingress::start_cluster(client.clone());
    let listeners = ingress::Listeners {
        http: Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
        https: Some(TcpListener::bind("127.0.0.1:0").await.unwrap()),
    };
    let http_addr = listeners.http.as_ref().unwrap().local_addr().unwrap();
    let https_addr = listeners.https.as_ref().unwrap().local_addr().unwrap();
    let node = ingress::NodeOptions {
        node_name: "n1".into(),
        node_ip: "127.0.0.1".parse().unwrap(),
    };
    let _node = ingress::start_node(client.clone(), listeners, node).unwrap();

    // Two endpoints on different addresses and ports, one Service port named http.
    let (a, b) = (
        backend("127.0.0.1", "a").await,
        backend("127.0.0.2", "b").await,
    );
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "web"},
                "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})),
        )
        .await
        .unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    for (name, addr) in [("web-a", a), ("web-b", b)] {
        let slice = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": addr.port(), "protocol": "TCP"}],
            "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}],
        });
        slices
            .create(&PostParams::default(), &from(slice))
            .await
            .unwrap();
    }

    // The cluster side made the default class; admission gives it to a classless Ingress.
    let classes: Api<IngressClass> = Api::all(client.clone());
    eventually("the k8rs IngressClass", || async {
        classes.get_opt("k8rs").await.unwrap()
    })
    .await;
    let cert = rcgen::generate_simple_self_signed(vec!["a.example.com".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "a-tls", "namespace": "default"},
        "stringData": {"tls.crt": cert_pem, "tls.key": cert.signing_key.serialize_pem()},
    });
    let out = server.stdin(&["apply", "-f", "-"], &secret.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "default");
    let ing = json!({
        "metadata": {"name": "demo"},
        "spec": {
            "tls": [{"hosts": ["a.example.com"], "secretName": "a-tls"}],
            "rules": [
                {"http": {"paths": [{"path": "/app", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                {"host": "a.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}},
            ],
        },
    });
    let created = ingresses
        .create(&PostParams::default(), &from(ing))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().ingress_class_name.as_deref(),
        Some("k8rs")
    );

    // Routed, forwarded headers replaced, and spread over both endpoints.
    let first = eventually("a routed answer", || async {
        let (status, body) = http_get(http_addr, "anything.org", "/app/x").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(
        first.ends_with("/app/x xff=127.0.0.1 proto=http host=anything.org"),
        "{first}"
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let (_, body) = http_get(http_addr, "anything.org", "/app").await;
        seen.insert(body.split(' ').next().unwrap().to_string());
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    // Keep-alive: several requests on one client connection.
    let tcp = TcpStream::connect(http_addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        // Fails if the controller closed the connection after the last answer.
        send.ready().await.unwrap();
        let req = hyper::Request::get("/app/k").header("host", "h");
        let resp = send
            .send_request(req.body(Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
    }
    // An upgrade is passed through: the backend's 101, then bytes both ways.
    let mut raw = TcpStream::connect(http_addr).await.unwrap();
    let upgrade = "GET /app/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
    raw.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(raw.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(
        head.starts_with("http/1.1 101") && head.contains("upgrade: echo"),
        "{head}"
    );
    raw.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    raw.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");

    assert_eq!(
        http_get(http_addr, "anything.org", "/application").await.0,
        404
    );
    assert_eq!(http_get(http_addr, "anything.org", "/").await.0, 404);

    // TLS: the Secret's certificate for its host; the default one otherwise.
    let stream = tls(https_addr, "a.example.com", &cert_pem).await.unwrap();
    let (status, body) = get(stream, "a.example.com", "/any").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("/any xff=127.0.0.1 proto=https host=a.example.com"),
        "{body}"
    );
    assert!(tls(https_addr, "b.example.com", &cert_pem).await.is_err());

    // status.loadBalancer: the node's address.
    eventually("the Ingress status", || async {
        let ing = ingresses.get("demo").await.unwrap();
        let lb = ing.status?.load_balancer?.ingress?;
        (lb.len() == 1 && lb[0].ip.as_deref() == Some("127.0.0.1")).then_some(())
    })
    .await;

    // An ExternalName Service: its name resolved per request, its targetPort used.
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "ext"},
                "spec": {"type": "ExternalName", "externalName": "localhost",
                    "ports": [{"port": 80, "targetPort": a.port()}]}})),
        )
        .await
        .unwrap();
    let ext = json!({
        "metadata": {"name": "ext"},
        "spec": {"rules": [{"host": "ext.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "ext", "port": {"number": 80}}}}]}}]},
    });
    ingresses
        .create(&PostParams::default(), &from(ext))
        .await
        .unwrap();
    let body = eventually("the ExternalName backend", || async {
        let (status, body) = http_get(http_addr, "ext.example.com", "/out").await;
        (status == 200).then_some(body)
    })
    .await;
    assert!(body.starts_with("a /out "), "{body}");

    // No Service, no endpoints: 503.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("503 without the Service", || async {
        (http_get(http_addr, "anything.org", "/app").await.0 == 503).then_some(())
    })
    .await;
}
