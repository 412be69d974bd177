//! Running one probe or hook action against a container: exec through CRI's
//! ExecSync, httpGet, tcpSocket and grpc (grpc.health.v1 Check) over the pod's
//! network. Failure messages follow upstream's prober output.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cri::RuntimeService;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::{Container, ExecAction, GRPCAction, HTTPGetAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// What probes send as User-Agent, as upstream's kubelet of this API version.
pub const USER_AGENT: &str = "kube-probe/1.33";

/// A probe's or hook's result; a failure carries upstream's output message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(String),
}

/// The container a probe runs against.
#[derive(Clone)]
pub struct Target {
    pub runtime: Arc<dyn RuntimeService>,
    pub container_id: String,
    /// Where network probes connect unless they name a host.
    pub pod_ip: String,
    pub container: Container,
}

/// A container port by number or by the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("couldn't find port: {name} in {}", c.name))?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port number: {n}"))
}

/// Runs `cmd` in the container; exit code 0 is success, otherwise its output.
pub async fn exec(t: &Target, a: &ExecAction, timeout: Duration) -> Outcome {
    let cmd = a.command.clone().unwrap_or_default();
    let joined = cmd.join(" ");
    let run = t.runtime.exec_sync(&t.container_id, cmd, timeout);
    // A runtime that ignores the timeout still cannot hold the prober.
    match tokio::time::timeout(timeout + Duration::from_secs(1), run).await {
        Ok(Ok(r)) if r.exit_code == 0 => Outcome::Success,
        Ok(Ok(r)) => {
            let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
            out.push_str(&String::from_utf8_lossy(&r.stderr));
            Outcome::Failure(out)
        }
        // gRPC's DEADLINE_EXCEEDED (4): the runtime's timeout.
        Ok(Err(e)) if e.code().map(|c| c as i32) == Some(4) => {
            Outcome::Failure(format!("command {joined:?} timed out"))
        }
        Ok(Err(e)) => Outcome::Failure(e.to_string()),
        Err(_) => Outcome::Failure(format!("command {joined:?} timed out")),
    }
}

fn host_port(host: Option<&str>, pod_ip: &str, port: u16) -> String {
    let host = host.filter(|h| !h.is_empty()).unwrap_or(pod_ip);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects within `timeout`, with Go's dial error texts.
async fn dial(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Err(format!("dial tcp {addr}: connect: connection refused"))
        }
        Ok(Err(e)) => Err(format!("dial tcp {addr}: {e}")),
        Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// Connects to the port (on the pod's IP unless `host`) within the timeout.
pub async fn tcp(
    pod_ip: &str,
    c: &Container,
    port: &IntOrString,
    host: Option<&str>,
    timeout: Duration,
) -> Outcome {
    let port = match resolve_port(port, c) {
        Ok(p) => p,
        Err(e) => return Outcome::Failure(e),
    };
    match dial(&host_port(host, pod_ip, port), timeout).await {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Failure(e),
    }
}

/// An HTTP GET; `Ok(status)` when the server answered.
pub async fn http_status(
    pod_ip: &str,
    c: &Container,
    a: &HTTPGetAction,
    timeout: Duration,
) -> Result<u16, String> {
    let port = resolve_port(&a.port, c)?;
    let addr = host_port(a.host.as_deref(), pod_ip, port);
    let https = a
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"));
    let mut path = a.path.clone().unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let url = format!("{}://{addr}{path}", if https { "https" } else { "http" });
    let mut headers = vec![
        ("Host".to_string(), addr.clone()),
        ("User-Agent".to_string(), USER_AGENT.to_string()),
        ("Accept".to_string(), "*/*".to_string()),
    ];
    for h in a.http_headers.iter().flatten() {
        match headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(&h.name))
        {
            Some(slot) => slot.1 = h.value.clone(),
            None => headers.push((h.name.clone(), h.value.clone())),
        }
    }
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    let server = a
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or(pod_ip.to_string());
    let get = async {
        let tcp = dial(&addr, timeout).await?;
        let r = if https {
            let tls = tls_connector()
                .connect(server_name(&server)?, tcp)
                .await
                .map_err(|e| e.to_string())?;
            exchange(tls, req.as_bytes()).await
        } else {
            exchange(tcp, req.as_bytes()).await
        };
        r.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(timeout, get).await {
        Ok(Ok(code)) => Ok(code),
        Ok(Err(e)) => Err(format!("Get {url:?}: {e}")),
        Err(_) => Err(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

/// httpGet as a probe: 200 ≤ code < 400 is success.
pub async fn http(pod_ip: &str, c: &Container, a: &HTTPGetAction, timeout: Duration) -> Outcome {
    match http_status(pod_ip, c, a, timeout).await {
        Ok(code) if (200..400).contains(&code) => Outcome::Success,
        Ok(code) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Err(e) => Outcome::Failure(e),
    }
}

/// Sends the request and reads the status line's code.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &[u8]) -> std::io::Result<u16> {
    s.write_all(req).await?;
    s.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 8192 {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed HTTP response {line:?}"),
        )),
    }
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())
}

/// Probes do not verify certificates, as upstream's (InsecureSkipVerify).
fn tls_connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// grpc.health.v1.Health/Check over h2c; SERVING is success.
pub async fn grpc(pod_ip: &str, a: &GRPCAction, timeout: Duration) -> Outcome {
    let Ok(port) = u16::try_from(a.port) else {
        return Outcome::Failure(format!("invalid port number: {}", a.port));
    };
    let addr = host_port(None, pod_ip, port);
    let service = a.service.clone().unwrap_or_default();
    let check = async {
        let tcp = dial(&addr, timeout).await?;
        grpc_check(tcp, &addr, &service).await
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(1)) => Outcome::Success,
        Ok(Ok(status)) => {
            let name = match status {
                2 => "NOT_SERVING",
                3 => "SERVICE_UNKNOWN",
                _ => "UNKNOWN",
            };
            Outcome::Failure(format!("service unhealthy (responded with {name:?})"))
        }
        Ok(Err(e)) => Outcome::Failure(e),
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {timeout:?}"
        )),
    }
}

/// One unary Check call; the response's status enum.
async fn grpc_check(tcp: TcpStream, addr: &str, service: &str) -> Result<u64, String> {
    let io = hyper_util::rt::TokioIo::new(tcp);
    let exec = hyper_util::rt::TokioExecutor::new();
    let (mut send, conn) = hyper::client::conn::http2::handshake(exec, io)
        .await
        .map_err(|e| format!("failed to connect service {addr:?}: {e}"))?;
    tokio::spawn(conn);
    // HealthCheckRequest{service = 1}, in one length-prefixed gRPC message.
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        msg.push(service.len() as u8);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut body = vec![0u8];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(&msg);
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", USER_AGENT)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let headers = resp.headers().clone();
    let collected = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let code = trailers
        .get("grpc-status")
        .or(headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_string();
    if code != "0" {
        let message = trailers
            .get("grpc-message")
            .or(headers.get("grpc-message"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return Err(format!("rpc error: code = {code} desc = {message}"));
    }
    let data = collected.to_bytes();
    // HealthCheckResponse{status = 1 (varint)}; absent means UNKNOWN (0).
    let payload = data.get(5..).unwrap_or_default();
    let mut status = 0u64;
    if payload.first() == Some(&0x08) {
        for (i, b) in payload[1..].iter().enumerate().take(9) {
            status |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok(status)
}
