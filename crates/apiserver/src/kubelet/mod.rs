//! The API server's side of `pods/log`, `pods/exec`, `pods/attach` and
//! `pods/portforward`: find the pod's node, dial its kubelet over TLS as the API
//! server's kubelet client, and relay. kubectl's current stream protocols are
//! translated on the way (WebSocket `v5.channel.k8s.io` to the `v4` the runtime's
//! streaming server speaks; SPDY tunnelled in WebSocket frames to a plain SPDY
//! upgrade), as upstream's API server does; other upgrades pass through unchanged.

mod logs;
mod metrics_api;
mod node_proxy;
mod spdy;
mod streams;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use logs::pod_log;
pub use metrics_api::metrics;
pub use node_proxy::node_proxy;
pub use streams::{pod_attach, pod_exec, pod_portforward};

use crate::error::{ApiError, Result};
use crate::handlers::Call;

/// How the API server dials kubelets.
#[derive(Clone)]
pub struct KubeletClient {
    tls: TlsConnector,
}

impl KubeletClient {
    /// Trusts kubelet serving certificates signed by `ca_pem` and presents `identity`.
    pub fn new(ca_pem: &str, identity: &pki::CertAndKey) -> pki::Result<Self> {
        let mut cfg = Arc::unwrap_or_clone(pki::tls::client_config(ca_pem, Some(identity))?);
        // Upgrades (WebSocket, SPDY) need HTTP/1.1.
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            tls: TlsConnector::from(Arc::new(cfg)),
        })
    }

    async fn connect(&self, addr: SocketAddr) -> Result<TlsStream<TcpStream>> {
        let unreachable = |e: std::io::Error| {
            ApiError::internal(format!("error dialing backend: dial tcp {addr}: {e}"))
        };
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable(std::io::ErrorKind::TimedOut.into()))?
            .map_err(unreachable)?;
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        self.tls.connect(name, tcp).await.map_err(unreachable)
    }

    /// Sends one bodiless request for `path` to the kubelet at `addr` over a
    /// connection of its own (which stays usable for an upgrade).
    async fn send(
        &self,
        addr: SocketAddr,
        request: http::request::Builder,
        path: &str,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let tls = self.connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ApiError::internal(format!("kubelet handshake: {e}")))?;
        tokio::spawn(conn.with_upgrades());
        let req = request
            .uri(path)
            .header(http::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .expect("valid request parts");
        sender
            .send_request(req)
            .await
            .map_err(|e| ApiError::internal(format!("kubelet request: {e}")))
    }

    /// GETs `path` from the kubelet at `addr` and decodes its JSON answer.
    async fn get_json(&self, addr: SocketAddr, path: &str) -> Result<Value> {
        use http_body_util::BodyExt;
        let resp = self.send(addr, http::Request::builder(), path).await?;
        let status = resp.status();
        if status != http::StatusCode::OK {
            return Err(kubelet_error(status, resp.into_body()).await);
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ApiError::internal(format!("reading the kubelet's answer: {e}")))?;
        serde_json::from_slice(&body.to_bytes())
            .map_err(|e| ApiError::internal(format!("the kubelet's {path} is not JSON: {e}")))
    }
}

const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The pod of the call, and the address of its node's kubelet.
struct Target {
    pod: Value,
    kubelet: SocketAddr,
}

/// Finds the call's pod and its kubelet. Takes what it needs from `call` up front: a
/// `&Call` held across an await would make the handler's future not `Send`.
fn target(call: &Call) -> impl Future<Output = Result<(KubeletClient, Target)>> + Send + 'static {
    let state = call.state.clone();
    let pods = call.info.clone();
    let ns = call.ns().map(str::to_string);
    let name = call.name().to_string();
    async move {
        let client = state
            .kubelet
            .clone()
            .ok_or_else(|| ApiError::unavailable("this server has no kubelet client configured"))?;
        let pod = state.registry.get(&pods, ns.as_deref(), &name).await?;
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(format!("pod {name} does not have a host assigned"))
            })?;
        let nodes = state
            .registry
            .resources
            .get("", "v1", "nodes")
            .ok_or_else(|| ApiError::internal("nodes are not served"))?;
        let node = state.registry.get(&nodes, None, node_name).await?;
        let kubelet = kubelet_address(&node).ok_or_else(|| {
            ApiError::internal(format!(
                "node {node_name} reports no address for its kubelet"
            ))
        })?;
        Ok((client, Target { pod, kubelet }))
    }
}

/// The node's preferred address (InternalIP, then ExternalIP, then Hostname if it is
/// an IP) and its kubelet port, as upstream's default preference order.
fn kubelet_address(node: &Value) -> Option<SocketAddr> {
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(10250);
    let addresses = node.pointer("/status/addresses")?.as_array()?;
    ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|kind| {
            addresses
                .iter()
                .filter(|a| a["type"] == *kind)
                .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
        })
        .map(|ip| SocketAddr::new(ip, port))
}

/// The container a request is for: the `container` parameter, or the pod's only
/// container; errors worded as upstream's.
fn container_name(pod: &Value, requested: Option<&str>) -> Result<String> {
    let names = |field: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str);
    let pod_name = pod_name.unwrap_or_default();
    let (containers, init) = (names("containers"), names("initContainers"));
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            let known = containers
                .iter()
                .chain(&init)
                .chain(&names("ephemeralContainers"))
                .any(|n| n == c);
            if known {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {pod_name}"
                )))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut m = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                m.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(m))
        }
    }
}

/// The kubelet's refusal (a plain-text body) as a Status.
async fn kubelet_error(status: http::StatusCode, body: hyper::body::Incoming) -> ApiError {
    use http_body_util::BodyExt;
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&body).trim().to_string();
    match status.as_u16() {
        400 => ApiError::bad_request(message),
        404 => ApiError::new(404, "NotFound", message),
        _ => ApiError::internal(message),
    }
}

/// A query parameter of the call.
fn query_param<'a>(call: &'a Call, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    let q = call.parts.uri.query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_internal_ip_and_published_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"},
                          {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}}}});
        assert_eq!(
            kubelet_address(&node),
            Some("10.0.0.5:11250".parse().unwrap())
        );
        let bare =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.6"}]}});
        assert_eq!(
            kubelet_address(&bare),
            Some("10.0.0.6:10250".parse().unwrap())
        );
        assert_eq!(kubelet_address(&json!({})), None);
    }

    #[test]
    fn container_defaulting_as_upstream() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}});
        assert_eq!(container_name(&pod, Some("i")).unwrap(), "i");
        let e = container_name(&pod, None).unwrap_err().status().to_string();
        assert!(
            e.contains("a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"),
            "{e}"
        );
        let e = container_name(&pod, Some("x"))
            .unwrap_err()
            .status()
            .to_string();
        assert!(e.contains("container x is not valid for pod p"), "{e}");
        let one = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container_name(&one, None).unwrap(), "only");
    }
}
