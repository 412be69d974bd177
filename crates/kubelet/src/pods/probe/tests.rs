use k8s_openapi::api::core::v1::{Container, ContainerPort, HTTPGetAction, HTTPHeader};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::action::{self, Outcome};
use super::*;

fn settings(delay: u64, success: u32, failure: u32) -> Settings {
    Settings {
        initial_delay: Duration::from_secs(delay),
        period: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        success_threshold: success,
        failure_threshold: failure,
    }
}

#[test]
fn defaults_are_upstreams() {
    let s = Settings::of(&Probe::default(), Kind::Readiness);
    assert_eq!(s, settings(0, 1, 3).with_period(10));
    // successThreshold must be 1 for liveness and startup.
    let p = Probe {
        success_threshold: Some(3),
        ..Default::default()
    };
    assert_eq!(Settings::of(&p, Kind::Liveness).success_threshold, 1);
    assert_eq!(Settings::of(&p, Kind::Readiness).success_threshold, 3);
}

impl Settings {
    fn with_period(mut self, secs: u64) -> Self {
        self.period = Duration::from_secs(secs);
        self
    }
}

#[test]
fn initial_results_follow_the_kind() {
    assert_eq!(
        Tracker::new(Kind::Liveness, settings(0, 1, 3)).result(),
        Some(true)
    );
    assert_eq!(
        Tracker::new(Kind::Readiness, settings(0, 1, 3)).result(),
        Some(false)
    );
    assert_eq!(
        Tracker::new(Kind::Startup, settings(0, 1, 3)).result(),
        None
    );
}

#[test]
fn failure_threshold_counts_consecutive_failures() {
    let mut t = Tracker::new(Kind::Liveness, settings(0, 1, 3));
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(false), None);
    // A success in between starts the count again.
    assert_eq!(t.record(true), None);
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(false), Some(false));
    assert_eq!(t.result(), Some(false));
}

#[test]
fn readiness_needs_success_threshold_and_flips_back() {
    let mut t = Tracker::new(Kind::Readiness, settings(0, 2, 2));
    assert_eq!(t.record(true), None);
    assert_eq!(t.record(true), Some(true));
    assert_eq!(t.record(true), None, "no change, no news");
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(false), Some(false));
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(true), None);
    assert_eq!(t.record(true), Some(true));
}

#[test]
fn initial_delay_is_whole_seconds_since_start() {
    let t = Tracker::new(Kind::Readiness, settings(3, 1, 3));
    assert!(!t.due(Duration::from_millis(2999), true));
    assert!(t.due(Duration::from_secs(3), true));
    let t = Tracker::new(Kind::Liveness, settings(0, 1, 3));
    assert!(t.due(Duration::ZERO, true));
}

#[test]
fn startup_gates_liveness_and_readiness() {
    let live = Tracker::new(Kind::Liveness, settings(0, 1, 3));
    let ready = Tracker::new(Kind::Readiness, settings(0, 1, 3));
    let startup = Tracker::new(Kind::Startup, settings(0, 1, 3));
    assert!(!live.due(Duration::from_secs(60), false));
    assert!(!ready.due(Duration::from_secs(60), false));
    assert!(startup.due(Duration::from_secs(60), false));
    assert!(live.due(Duration::from_secs(60), true));
    assert!(ready.due(Duration::from_secs(60), true));
    assert!(
        !startup.due(Duration::from_secs(60), true),
        "done once started"
    );
}

fn container(ports: &[(&str, i32)]) -> Container {
    Container {
        name: "c".into(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p)| ContainerPort {
                    name: Some(n.to_string()),
                    container_port: *p,
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn ports_by_number_or_name() {
    let c = container(&[("web", 8080)]);
    assert_eq!(action::resolve_port(&IntOrString::Int(80), &c), Ok(80));
    let web = IntOrString::String("web".into());
    assert_eq!(action::resolve_port(&web, &c), Ok(8080));
    let nope = IntOrString::String("nope".into());
    assert_eq!(
        action::resolve_port(&nope, &c),
        Err("couldn't find port: nope in c".into())
    );
}

/// Answers one request per connection with `status`; sends back each request's head.
async fn server(status: u16) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (port, rx)
}

fn get(port: i32, path: &str) -> HTTPGetAction {
    HTTPGetAction {
        port: IntOrString::Int(port),
        path: Some(path.into()),
        ..Default::default()
    }
}

const T: Duration = Duration::from_secs(1);

#[tokio::test]
async fn http_get_success_and_headers() {
    let (port, mut heads) = server(200).await;
    let c = container(&[("web", port as i32)]);
    let mut a = get(0, "healthz");
    a.port = IntOrString::String("web".into());
    a.http_headers = Some(vec![HTTPHeader {
        name: "X-Custom".into(),
        value: "yes".into(),
    }]);
    assert_eq!(action::http("127.0.0.1", &c, &a, T).await, Outcome::Success);
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("User-Agent: kube-probe/1.33\r\n"), "{head}");
    assert!(head.contains("X-Custom: yes\r\n"), "{head}");
    assert!(
        head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn http_get_codes() {
    let c = container(&[]);
    let (port, _h) = server(302).await;
    let a = get(port as i32, "/");
    assert_eq!(action::http("127.0.0.1", &c, &a, T).await, Outcome::Success);
    let (port, _h) = server(500).await;
    let a = get(port as i32, "/");
    assert_eq!(
        action::http("127.0.0.1", &c, &a, T).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
}

#[tokio::test]
async fn http_get_refused_and_timeout() {
    let c = container(&[]);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts (the backlog does) but never answers.
    let a = get(port as i32, "/x");
    let Outcome::Failure(m) = action::http("127.0.0.1", &c, &a, T).await else {
        panic!("a silent server must fail the probe");
    };
    assert!(
        m.starts_with(&format!(
            "Get \"http://127.0.0.1:{port}/x\": context deadline exceeded"
        )),
        "{m}"
    );
    drop(l);
    let Outcome::Failure(m) = action::http("127.0.0.1", &c, &a, T).await else {
        panic!("a closed port must fail the probe");
    };
    assert_eq!(
        m,
        format!(
            "Get \"http://127.0.0.1:{port}/x\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )
    );
}

#[tokio::test]
async fn tcp_socket_connects() {
    let c = container(&[]);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = IntOrString::Int(l.local_addr().unwrap().port() as i32);
    assert_eq!(
        action::tcp("127.0.0.1", &c, &port, None, T).await,
        Outcome::Success
    );
    drop(l);
    assert!(matches!(
        action::tcp("127.0.0.1", &c, &port, None, T).await,
        Outcome::Failure(m) if m.ends_with("connect: connection refused")
    ));
}

#[tokio::test]
async fn https_get_skips_certificate_checks() {
    // A certificate from a CA the prober has never heard of, for another name.
    let ca = pki::CertificateAuthority::generate("someone-else").unwrap();
    let leaf = pki::LeafSpec::server("elsewhere", &["elsewhere.example".into()], &[]);
    let serving = ca.issue(&leaf).unwrap();
    let tls = pki::tls::server_config(&serving, &ca.cert_and_key().cert_pem).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut s = acceptor.accept(s).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await.unwrap();
        let _ = s
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .await;
        let _ = s.shutdown().await;
    });
    let mut a = get(port as i32, "/");
    a.scheme = Some("HTTPS".into());
    let c = container(&[]);
    assert_eq!(action::http("127.0.0.1", &c, &a, T).await, Outcome::Success);
}

/// A grpc.health.v1 server over h2c answering every Check with `status`.
async fn health_server(status: u8) -> u16 {
    use bytes::Bytes;
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let svc = hyper::service::service_fn(
                move |req: http::Request<hyper::body::Incoming>| async move {
                    assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                    assert_eq!(req.headers()["user-agent"], action::USER_AGENT);
                    let msg: Vec<u8> = vec![0, 0, 0, 0, 2, 0x08, status];
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", "0".parse().unwrap());
                    let frames = vec![
                        Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(msg))),
                        Ok(Frame::trailers(trailers)),
                    ];
                    let body = StreamBody::new(futures::stream::iter(frames));
                    let resp = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(body)
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                },
            );
            let exec = hyper_util::rt::TokioExecutor::new();
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(exec)
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc),
            );
        }
    });
    port
}

#[tokio::test]
async fn grpc_health_check() {
    let a = |port: u16| k8s_openapi::api::core::v1::GRPCAction {
        port: port as i32,
        service: Some("app".into()),
    };
    let serving = health_server(1).await;
    assert_eq!(
        action::grpc("127.0.0.1", &a(serving), T).await,
        Outcome::Success
    );
    let not_serving = health_server(2).await;
    assert_eq!(
        action::grpc("127.0.0.1", &a(not_serving), T).await,
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
}
