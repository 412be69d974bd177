//! exec, attach and port-forward: the runtime's streaming server does the work; the
//! kubelet asks CRI for a session URL and proxies the caller's upgrade (WebSocket or
//! SPDY, whichever it asked for) to it byte for byte, as upstream's kubelet does when
//! it does not redirect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use bytes::Bytes;
use cri::v1::{AttachRequest, ExecRequest};
use http::{HeaderName, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::lookup::{self, NotFound};
use super::text;
use crate::Runtime;

/// The stream options kubectl passes as query parameters.
#[derive(Debug, Default, PartialEq)]
struct StreamOptions {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn parse_options(query: Option<&str>) -> StreamOptions {
    let mut o = StreamOptions::default();
    let truthy = |v: &str| matches!(v, "1" | "true" | "True" | "TRUE");
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "command" => o.command.push(v.into_owned()),
            "input" | "stdin" => o.stdin = truthy(&v),
            "output" | "stdout" => o.stdout = truthy(&v),
            "error" | "stderr" => o.stderr = truthy(&v),
            "tty" => o.tty = truthy(&v),
            _ => {}
        }
    }
    // A TTY merges stderr into stdout (upstream drops the stderr stream).
    if o.tty {
        o.stderr = false;
    }
    o
}

type Names = Path<(String, String, String)>;

pub async fn exec(
    State(rt): State<Arc<Runtime>>,
    Path((ns, pod, container)): Names,
    req: Request,
) -> Response<Body> {
    let o = parse_options(req.uri().query());
    if o.command.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 command",
        );
    }
    let url = async {
        let id = current_container(&rt, &ns, &pod, &container).await?;
        let r = ExecRequest {
            container_id: id,
            cmd: o.command,
            tty: o.tty,
            stdin: o.stdin,
            stdout: o.stdout,
            stderr: o.stderr,
        };
        rt.runtime.exec(r).await.map_err(|e| runtime_error(&e))
    };
    match url.await {
        Ok(url) => proxy_upgrade(req, &url).await,
        Err((status, message)) => text(status, message),
    }
}

pub async fn attach(
    State(rt): State<Arc<Runtime>>,
    Path((ns, pod, container)): Names,
    req: Request,
) -> Response<Body> {
    let o = parse_options(req.uri().query());
    let url = async {
        let id = current_container(&rt, &ns, &pod, &container).await?;
        let r = AttachRequest {
            container_id: id,
            stdin: o.stdin,
            tty: o.tty,
            stdout: o.stdout,
            stderr: o.stderr,
        };
        rt.runtime.attach(r).await.map_err(|e| runtime_error(&e))
    };
    match url.await {
        Ok(url) => proxy_upgrade(req, &url).await,
        Err((status, message)) => text(status, message),
    }
}

pub async fn port_forward(
    State(rt): State<Arc<Runtime>>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response<Body> {
    let url = async {
        let sandbox = lookup::sandbox(rt.runtime.as_ref(), &ns, &pod)
            .await
            .map_err(|e| not_found(&e))?;
        // Ports travel in the stream headers; CRI wants none up front.
        let url = rt.runtime.port_forward(&sandbox, Vec::new()).await;
        url.map_err(|e| runtime_error(&e))
    };
    match url.await {
        Ok(url) => proxy_upgrade(req, &url).await,
        Err((status, message)) => text(status, message),
    }
}

/// Why a stream cannot be set up: the status and text to answer with.
type Refusal = (StatusCode, String);

async fn current_container(
    rt: &Runtime,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<String, Refusal> {
    let found = lookup::containers(rt.runtime.as_ref(), ns, pod, container).await;
    let found = found.map_err(|e| not_found(&e))?;
    Ok(found[0].id.clone())
}

fn not_found(e: &NotFound) -> Refusal {
    match e {
        NotFound::Runtime(m) => (StatusCode::INTERNAL_SERVER_ERROR, m.clone()),
        other => (StatusCode::NOT_FOUND, other.to_string()),
    }
}

fn runtime_error(e: &cri::Error) -> Refusal {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Headers that negotiate the stream protocol and must reach the streaming server.
const FORWARDED: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// Replays the caller's upgrade request against `url` and, once the streaming
/// server switched protocols, splices the two connections.
async fn proxy_upgrade(mut req: Request, url: &str) -> Response<Body> {
    let bad_gateway = |m: String| text(StatusCode::BAD_GATEWAY, m);
    let Ok(uri) = url.parse::<http::Uri>() else {
        return bad_gateway(format!(
            "the runtime returned an invalid stream URL {url:?}"
        ));
    };
    let Some(authority) = uri.authority().cloned() else {
        return bad_gateway(format!("the runtime's stream URL {url:?} has no host"));
    };
    let tcp = match tokio::net::TcpStream::connect(authority.as_str()).await {
        Ok(t) => t,
        Err(e) => return bad_gateway(format!("cannot reach the runtime's streaming server: {e}")),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(h) => h,
        Err(e) => return bad_gateway(format!("streaming server handshake: {e}")),
    };
    tokio::spawn(conn.with_upgrades());
    let mut upstream = http::Request::builder()
        .method(req.method())
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, authority.as_str());
    for (name, value) in req.headers() {
        if FORWARDED.contains(&name.as_str()) {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream
        .body(Empty::<Bytes>::new())
        .expect("valid request parts");
    let mut resp = match sender.send_request(upstream).await {
        Ok(r) => r,
        Err(e) => return bad_gateway(format!("streaming server request: {e}")),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        return Response::builder()
            .status(status)
            .body(Body::from(body.unwrap_or_default()))
            .expect("valid response parts");
    }
    let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in resp.headers() {
        if is_upgrade_response_header(name) {
            out = out.header(name, value);
        }
    }
    let theirs = hyper::upgrade::on(&mut resp);
    let ours = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let (Ok(ours), Ok(theirs)) = tokio::join!(ours, theirs) else {
            tracing::debug!("a stream upgrade did not complete");
            return;
        };
        let (mut a, mut b) = (TokioIo::new(ours), TokioIo::new(theirs));
        if let Err(e) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
            tracing::debug!(error = %e, "stream ended with an error");
        }
    });
    out.body(Body::empty()).expect("valid response parts")
}

fn is_upgrade_response_header(name: &HeaderName) -> bool {
    FORWARDED.contains(&name.as_str()) || name.as_str() == "sec-websocket-accept"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_exec_options() {
        let o = parse_options(Some(
            "command=sh&command=-c&command=echo+a%26b&stdin=true&stdout=true&stderr=true&tty=true",
        ));
        assert_eq!(o.command, ["sh", "-c", "echo a&b"]);
        assert!(o.stdin && o.stdout && o.tty);
        assert!(!o.stderr, "a TTY has no separate stderr");
        let o = parse_options(Some("command=ls&output=1&error=1"));
        assert!(o.stdout && o.stderr && !o.stdin);
        assert_eq!(parse_options(None), StreamOptions::default());
    }
}
