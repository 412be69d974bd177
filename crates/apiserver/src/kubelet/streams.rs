//! exec, attach and port-forward: upgraded connections relayed to the kubelet.
//!
//! kubectl 1.30+ opens exec and attach as WebSocket `v5.channel.k8s.io`; the
//! runtime's streaming server speaks the v4 protocol over SPDY (its WebSocket v4
//! cannot close stdin), so the channels are translated onto SPDY streams, as
//! upstream's API server does. Port-forward arrives as SPDY tunnelled in WebSocket
//! binary frames; the frames' payload is relayed over a plain SPDY upgrade to the
//! kubelet. Anything else (SPDY from older clients, older WebSocket protocols) is
//! passed through as bytes.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{KubeletClient, container_name, encode, kubelet_error, query_param, spdy, target};
use crate::error::{ApiError, Result};
use crate::handlers::Call;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// v5's "close stream" message starts with this channel byte.
const CLOSE_SIGNAL: u8 = 255;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Exec,
    Attach,
    PortForward,
}

pub async fn pod_exec(call: Call) -> Result<Response> {
    stream(call, Kind::Exec).await
}

pub async fn pod_attach(call: Call) -> Result<Response> {
    stream(call, Kind::Attach).await
}

pub async fn pod_portforward(call: Call) -> Result<Response> {
    stream(call, Kind::PortForward).await
}

async fn stream(mut call: Call, kind: Kind) -> Result<Response> {
    let (client, t) = target(&call).await?;
    let (ns, pod) = (encode(call.ns().unwrap_or_default()), encode(call.name()));
    let query = call.parts.uri.query().unwrap_or_default().to_string();
    let path = match kind {
        Kind::PortForward => format!("/portForward/{ns}/{pod}?{query}"),
        Kind::Exec | Kind::Attach => {
            check_phase(&t.pod, kind)?;
            let c = container_name(&t.pod, query_param(&call, "container").as_deref())?;
            let verb = if kind == Kind::Exec { "exec" } else { "attach" };
            format!("/{verb}/{ns}/{pod}/{}?{query}", encode(&c))
        }
    };
    let on_upgrade = call
        .parts
        .extensions
        .remove::<OnUpgrade>()
        .filter(|_| call.parts.headers.contains_key(header::UPGRADE))
        .ok_or_else(|| ApiError::bad_request("Upgrade request required"))?;
    let headers = &call.parts.headers;
    let websocket = headers
        .get(header::UPGRADE)
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let offered = |p: &str| websocket && protocols(headers).any(|o| o == p);
    let upstream = Upstream {
        client,
        addr: t.kubelet,
        path,
    };
    if kind != Kind::PortForward && offered(V5) {
        let opts = StreamOpts::parse(&query);
        upstream
            .channels_v5_to_spdy(headers, on_upgrade, opts)
            .await
    } else if kind == Kind::PortForward && offered(SPDY_TUNNEL) {
        upstream.spdy_tunnel(headers, on_upgrade).await
    } else {
        let method = call.parts.method.clone();
        upstream.pass_through(method, headers, on_upgrade).await
    }
}

/// Upstream refuses to exec into or attach to a finished pod.
fn check_phase(pod: &Value, kind: Kind) -> Result<()> {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    match phase {
        Some(p @ ("Succeeded" | "Failed")) => Err(ApiError::bad_request(match kind {
            Kind::Attach => {
                format!("cannot attach a container in a completed pod; current phase is {p}")
            }
            _ => format!("cannot exec into a container in a completed pod; current phase is {p}"),
        })),
        _ => Ok(()),
    }
}

fn protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The 101 answer to a WebSocket upgrade, choosing `protocol`.
fn websocket_accepted(headers: &HeaderMap, protocol: &str) -> Result<Response> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(header::SEC_WEBSOCKET_PROTOCOL, protocol)
        .body(Body::empty())
        .expect("valid response parts"))
}

async fn server_socket(on_upgrade: OnUpgrade) -> Option<WebSocketStream<TokioIo<Upgraded>>> {
    let io = on_upgrade.await.ok()?;
    Some(WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await)
}

/// Headers that negotiate the stream protocol and travel to the kubelet.
const FORWARDED: &[header::HeaderName] = &[
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];
const STREAM_PROTOCOL: &str = "x-stream-protocol-version";

struct Upstream {
    client: KubeletClient,
    addr: std::net::SocketAddr,
    path: String,
}

impl Upstream {
    /// An HTTP/1.1 upgrade request to the kubelet; returns the kubelet's 101.
    async fn upgrade(
        &self,
        method: http::Method,
        headers: impl IntoIterator<Item = (header::HeaderName, HeaderValue)>,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let mut req = http::Request::builder().method(method);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = self.client.send(self.addr, req, &self.path).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(kubelet_error(resp.status(), resp.into_body()).await);
        }
        Ok(resp)
    }

    async fn pass_through(
        self,
        method: http::Method,
        headers: &HeaderMap,
        on_upgrade: OnUpgrade,
    ) -> Result<Response> {
        let forwarded = headers
            .iter()
            .filter(|(n, _)| FORWARDED.contains(n) || n.as_str() == STREAM_PROTOCOL)
            .map(|(n, v)| (n.clone(), v.clone()));
        let mut resp = self.upgrade(method, forwarded.collect::<Vec<_>>()).await?;
        let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        for (name, value) in resp.headers() {
            if FORWARDED.contains(name)
                || name == header::SEC_WEBSOCKET_ACCEPT
                || name.as_str() == STREAM_PROTOCOL
            {
                out = out.header(name, value);
            }
        }
        let theirs = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            if let (Ok(ours), Ok(theirs)) = tokio::join!(on_upgrade, theirs) {
                let (mut a, mut b) = (TokioIo::new(ours), TokioIo::new(theirs));
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            }
        });
        Ok(out.body(Body::empty()).expect("valid response parts"))
    }

    async fn channels_v5_to_spdy(
        self,
        headers: &HeaderMap,
        on_upgrade: OnUpgrade,
        opts: StreamOpts,
    ) -> Result<Response> {
        let accepted = websocket_accepted(headers, V5)?;
        let spdy = [
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (header::UPGRADE, HeaderValue::from_static("SPDY/3.1")),
            (
                header::HeaderName::from_static(STREAM_PROTOCOL),
                HeaderValue::from_static(V4),
            ),
        ];
        let mut resp = self.upgrade(http::Method::POST, spdy).await?;
        let theirs = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Some(client), Ok(kubelet)) = tokio::join!(server_socket(on_upgrade), theirs)
            else {
                return;
            };
            if let Err(e) = relay_v5_over_spdy(client, TokioIo::new(kubelet), opts).await {
                tracing::debug!(error = %e, "exec stream ended with an error");
            }
        });
        Ok(accepted)
    }

    async fn spdy_tunnel(self, headers: &HeaderMap, on_upgrade: OnUpgrade) -> Result<Response> {
        let accepted = websocket_accepted(headers, SPDY_TUNNEL)?;
        let spdy = [
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (header::UPGRADE, HeaderValue::from_static("SPDY/3.1")),
            (
                header::HeaderName::from_static(STREAM_PROTOCOL),
                HeaderValue::from_static("portforward.k8s.io"),
            ),
        ];
        let mut resp = self.upgrade(http::Method::POST, spdy).await?;
        let theirs = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (Some(client), Ok(kubelet)) = tokio::join!(server_socket(on_upgrade), theirs)
            else {
                return;
            };
            relay_tunnel(client, TokioIo::new(kubelet)).await;
        });
        Ok(accepted)
    }
}

/// A close with status 1000: clients treat a close without a status (1005) as an
/// error.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Which streams a remote command has, from its query (as the kubelet reads it: a
/// TTY has no separate stderr).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct StreamOpts {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl StreamOpts {
    fn parse(query: &str) -> Self {
        let mut o = StreamOpts::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let on = matches!(v.as_ref(), "1" | "true" | "True" | "TRUE");
            match k.as_ref() {
                "stdin" | "input" => o.stdin = on,
                "stdout" | "output" => o.stdout = on,
                "stderr" | "error" => o.stderr = on,
                "tty" => o.tty = on,
                _ => {}
            }
        }
        o.stderr &= !o.tty;
        o
    }

    /// (stream type, v5 channel) of each stream, in the order upstream opens them.
    fn streams(self) -> Vec<(&'static str, u8)> {
        [
            (true, "error", 3),
            (self.stdin, "stdin", 0),
            (self.stdout, "stdout", 1),
            (self.stderr, "stderr", 2),
            (self.tty, "resize", 4),
        ]
        .into_iter()
        .filter(|(on, ..)| *on)
        .map(|(_, kind, channel)| (kind, channel))
        .collect()
    }
}

/// Translates a v5 WebSocket client onto v4 SPDY streams until the command ends
/// (the streaming server closes the connection) or the client goes away.
async fn relay_v5_over_spdy<A, B>(
    client: WebSocketStream<A>,
    kubelet: B,
    opts: StreamOpts,
) -> std::io::Result<()>
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut from_kubelet, to_kubelet) = tokio::io::split(kubelet);
    let writer = tokio::sync::Mutex::new(spdy::Writer::new(to_kubelet));
    let mut by_channel = std::collections::HashMap::new();
    let mut by_stream = std::collections::HashMap::new();
    for (i, (kind, channel)) in opts.streams().into_iter().enumerate() {
        let id = 2 * i as u32 + 1;
        writer
            .lock()
            .await
            .syn_stream(id, &[("streamtype", kind)])
            .await?;
        by_channel.insert(channel, id);
        by_stream.insert(id, channel);
    }
    let (mut to_client, mut from_client) = client.split();
    let up = async {
        while let Some(Ok(msg)) = from_client.next().await {
            let Message::Binary(b) = msg else {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
                continue;
            };
            let Some((&channel, data)) = b.split_first() else {
                continue;
            };
            // v5's close signal: [255, channel]; only stdin can be closed.
            let (channel, data, fin) = match (channel, data.first()) {
                (CLOSE_SIGNAL, Some(&closed)) => (closed, &[][..], true),
                _ => (channel, data, false),
            };
            if let Some(&id) = by_channel.get(&channel) {
                let sent = writer.lock().await.data(id, data, fin).await;
                if sent.is_err() {
                    break;
                }
            }
        }
    };
    let down = async {
        loop {
            match spdy::read_frame(&mut from_kubelet).await {
                Ok(Some(spdy::Frame::Data { stream, data, .. })) => {
                    let Some(&channel) = by_stream.get(&stream) else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    let mut msg = Vec::with_capacity(data.len() + 1);
                    msg.push(channel);
                    msg.extend_from_slice(&data);
                    if to_client.send(Message::binary(msg)).await.is_err() {
                        break;
                    }
                }
                Ok(Some(spdy::Frame::Ping { id })) => {
                    let _ = writer.lock().await.pong(id).await;
                }
                Ok(Some(spdy::Frame::Reset { .. } | spdy::Frame::Other)) => {}
                Ok(Some(spdy::Frame::GoAway) | None) | Err(_) => break,
            }
        }
        let _ = to_client.send(normal_close()).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    Ok(())
}

/// Relays SPDY bytes between WebSocket binary frames and a raw upgraded connection.
async fn relay_tunnel<A, B>(client: WebSocketStream<A>, kubelet: B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut to_client, mut from_client) = client.split();
    let (mut from_kubelet, mut to_kubelet) = tokio::io::split(kubelet);
    let up = async {
        while let Some(Ok(msg)) = from_client.next().await {
            match msg {
                Message::Binary(b) if to_kubelet.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_kubelet.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_kubelet.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::binary(Bytes::copy_from_slice(&buf[..n]));
                    if to_client.send(frame).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_client.send(normal_close()).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_follow_the_query_as_the_kubelet_reads_it() {
        let o = StreamOpts::parse("command=sh&stdin=true&stdout=true&stderr=true&tty=true");
        assert_eq!(
            o.streams(),
            [("error", 3), ("stdin", 0), ("stdout", 1), ("resize", 4)]
        );
        let o = StreamOpts::parse("command=ls&stdout=true&stderr=true");
        assert_eq!(o.streams(), [("error", 3), ("stdout", 1), ("stderr", 2)]);
    }
}
