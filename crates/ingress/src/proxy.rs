//! The reverse proxy: one request in, routed by the table, sent to the next ready
//! endpoint of its backend over a pooled keep-alive HTTP/1.1 connection, the answer
//! streamed back. Bodies are never buffered. 404 when no rule matches, 503 when the
//! backend has no ready endpoint, 502 when the endpoint cannot be reached.
//! `Upgrade` requests (WebSocket) are passed through once the backend answers 101.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use crate::table::Table;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// The connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
}

/// How long to wait for an endpoint to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bodyless requests try this many endpoints when connecting fails.
const ATTEMPTS: usize = 3;

pub struct Proxy {
    table: watch::Receiver<Option<Arc<Table>>>,
    client: Client<HttpConnector, Body>,
}

impl Proxy {
    pub fn new(table: watch::Receiver<Option<Arc<Table>>>) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Proxy { table, client }
    }

    pub async fn handle(&self, mut req: Request<Incoming>, conn: Conn) -> Response<Body> {
        let Some(table) = self.table.borrow().clone() else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ingress controller is starting\n",
            );
        };
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default()
            .to_string();
        let Some(backend) = table.router.route(&host, req.uri().path()).cloned() else {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        };
        let resolved = match &backend.external {
            Some((name, port)) => Some(resolve(name, *port).await),
            None => None,
        };
        let candidates = resolved.as_ref().map_or(backend.pool.addrs.len(), Vec::len);
        if candidates == 0 {
            tracing::debug!(backend = %backend.name, "no ready endpoints");
            return text(StatusCode::SERVICE_UNAVAILABLE, "no available server\n");
        }
        let upgrade = wants_upgrade(&req);
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        forward_headers(&mut parts.headers, &host, conn, upgrade);
        parts.version = Version::HTTP_11;
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        // A request without a body can go to another endpoint if connecting fails.
        let mut body = (!body.is_end_stream()).then(|| body.boxed());
        let attempts = if body.is_none() {
            ATTEMPTS.min(candidates)
        } else {
            1
        };
        for attempt in 0..attempts {
            let addr = match &resolved {
                Some(addrs) => addrs[attempt],
                None => backend.pool.pick().expect("the pool is not empty"),
            };
            let mut out =
                Request::from_parts(parts.clone_head(), body.take().unwrap_or_else(empty));
            *out.uri_mut() = match format!("http://{addr}{path}").parse::<Uri>() {
                Ok(u) => u,
                Err(_) => return text(StatusCode::BAD_REQUEST, "bad request path\n"),
            };
            match self.client.request(out).await {
                Ok(resp) => {
                    tracing::debug!(%host, %path, backend = %backend.name, %addr, status = resp.status().as_u16(), "proxied");
                    return respond(resp, client_upgrade);
                }
                Err(e) => {
                    tracing::warn!(backend = %backend.name, %addr, error = %e, "endpoint failed");
                    if !e.is_connect() {
                        break;
                    }
                }
            }
        }
        text(StatusCode::BAD_GATEWAY, "bad gateway\n")
    }
}

/// The addresses of an ExternalName Service's name (none if it does not resolve).
async fn resolve(name: &str, port: u16) -> Vec<SocketAddr> {
    match tokio::net::lookup_host((name, port)).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => {
            tracing::warn!(%name, error = %e, "cannot resolve an ExternalName backend");
            Vec::new()
        }
    }
}

/// The request head without the body, for another attempt.
trait CloneHead {
    fn clone_head(&self) -> http::request::Parts;
}

impl CloneHead for http::request::Parts {
    fn clone_head(&self) -> http::request::Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method.clone();
        parts.uri = self.uri.clone();
        parts.version = self.version;
        parts.headers = self.headers.clone();
        parts
    }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// An HTTP/1.1 `Connection: upgrade` request naming a protocol.
fn wants_upgrade<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the headers that belong to one connection (RFC 9110 7.6.1), keeping
/// `Connection: upgrade` and `Upgrade` when the request is being upgraded.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| !(keep_upgrade && t.eq_ignore_ascii_case("upgrade")))
        .filter_map(|t| HeaderName::try_from(t).ok())
        .collect();
    for h in named {
        headers.remove(h);
    }
    for h in [
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
    ] {
        headers.remove(h);
    }
    headers.remove(header::CONNECTION);
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The headers the endpoint sees: the client's (hop-by-hop ones removed), the Host it
/// asked for, and the X-Forwarded-* set by us; a client's own X-Forwarded-* are not
/// trusted and are replaced.
fn forward_headers(headers: &mut HeaderMap, host: &str, conn: Conn, upgrade: bool) {
    strip_hop_by_hop(headers, upgrade);
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    if !headers.contains_key(header::HOST) && !host.is_empty() {
        set(headers, "host", host);
    }
    let client = conn.peer.ip().to_string();
    set(headers, "x-forwarded-for", &client);
    set(headers, "x-real-ip", &client);
    set(
        headers,
        "x-forwarded-proto",
        if conn.tls { "https" } else { "http" },
    );
    set(headers, "x-forwarded-host", host);
    set(headers, "x-forwarded-port", &conn.local.port().to_string());
}

/// The endpoint's answer for the client; a 101 to an upgrade request joins both
/// connections once the client's side is upgraded too.
fn respond(
    mut resp: Response<Incoming>,
    client: Option<hyper::upgrade::OnUpgrade>,
) -> Response<Body> {
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    match client {
        Some(client) if switching => {
            let backend = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let (client, backend) = match tokio::try_join!(client, backend) {
                    Ok(both) => both,
                    Err(e) => {
                        tracing::debug!(error = %e, "upgrade failed");
                        return;
                    }
                };
                let (mut c, mut b) = (TokioIo::new(client), TokioIo::new(backend));
                let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
            });
            let (parts, _) = resp.into_parts();
            Response::from_parts(parts, empty())
        }
        _ => {
            strip_hop_by_hop(resp.headers_mut(), false);
            resp.map(|b| b.boxed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(tls: bool) -> Conn {
        Conn {
            peer: "192.0.2.7:50000".parse().unwrap(),
            local: "10.0.0.1:443".parse().unwrap(),
            tls,
        }
    }

    #[test]
    fn forwarded_headers_replace_the_clients_and_drop_hop_by_hop_ones() {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("a.example.com"));
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("s"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        forward_headers(&mut h, "a.example.com", conn(true), false);
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "a.example.com");
        assert_eq!(h["x-forwarded-port"], "443");
        assert_eq!(h["host"], "a.example.com");
        assert_eq!(h["accept"], "*/*");
        for gone in ["connection", "x-secret", "keep-alive"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn upgrades_keep_their_headers_and_http2_gets_a_host() {
        let mut req = Request::new(());
        req.headers_mut()
            .insert("connection", HeaderValue::from_static("Upgrade"));
        req.headers_mut()
            .insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&req));
        let mut h = req.headers().clone();
        forward_headers(&mut h, "b.example.com:8080", conn(false), true);
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["host"], "b.example.com:8080");
        assert_eq!(h["x-forwarded-proto"], "http");
        let mut h = req.headers().clone();
        strip_hop_by_hop(&mut h, false);
        assert!(!h.contains_key("upgrade") && !h.contains_key("connection"));
    }
}
