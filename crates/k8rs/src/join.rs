//! What a server hands to joining agents (k3s' `/cacerts` and node certificate
//! endpoints): the cluster CA, which the agent checks against its token's hash, and,
//! for a caller presenting the token's secret, the node's client and kubelet serving
//! certificates, the client certificates of the node's service proxy and Ingress
//! controller (identities of their own, not the node's, as k3s gives agent components
//! theirs) and the cluster settings a kubelet needs.

use std::net::IpAddr;
use std::sync::Arc;

use apiserver::auth::rbac::bootstrap::roles::{INGRESS_GROUP, INGRESS_USER, PROXY_USER};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

/// The path of the node certificate endpoint.
pub const NODE_CERTIFICATES: &str = "/v1-k8rs/node-certificates";

/// What the server knows that agents need.
pub struct JoinState {
    pub pki: pki::ClusterPki,
    /// The token's secret: the only credential the endpoint accepts.
    pub secret: String,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRequest {
    pub node_name: String,
    pub node_ip: IpAddr,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCertificates {
    pub client_cert: String,
    pub client_key: String,
    pub serving_cert: String,
    pub serving_key: String,
    /// The service proxy's client certificate (`system:kube-proxy`).
    pub proxy_cert: String,
    pub proxy_key: String,
    /// The Ingress controller's client certificate (`system:k8rs-ingress`).
    pub ingress_cert: String,
    pub ingress_key: String,
    pub cluster_dns: IpAddr,
    pub cluster_domain: String,
}

/// Routes served beside the API (outside its authentication: `/cacerts` is public,
/// the certificate endpoint checks the token itself).
pub fn routes(state: Arc<JoinState>) -> axum::Router {
    axum::Router::new()
        .route("/cacerts", get(cacerts))
        .route(NODE_CERTIFICATES, post(node_certificates))
        .with_state(state)
}

async fn cacerts(State(s): State<Arc<JoinState>>) -> Response {
    let ca = s.pki.ca.cert_pem.clone();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], ca).into_response()
}

async fn node_certificates(
    State(s): State<Arc<JoinState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !pki::bearer::constant_time_eq(presented.as_bytes(), s.secret.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "invalid join token\n").into_response();
    }
    let req: NodeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad request: {e}\n")).into_response(),
    };
    if req.node_name.is_empty() || req.node_name.len() > 253 {
        return (StatusCode::BAD_REQUEST, "bad request: invalid nodeName\n").into_response();
    }
    let issued = s
        .pki
        .issue_kubelet_client(&req.node_name)
        .and_then(|client| {
            let serving = s.pki.issue_kubelet_serving(
                &req.node_name,
                std::slice::from_ref(&req.node_name),
                &[req.node_ip],
            )?;
            let proxy = s.pki.issue_client(PROXY_USER, &[])?;
            let ingress = s.pki.issue_client(INGRESS_USER, &[INGRESS_GROUP])?;
            Ok((client, serving, proxy, ingress))
        });
    match issued {
        Ok((client, serving, proxy, ingress)) => {
            tracing::info!(node = %req.node_name, ip = %req.node_ip, "issued node certificates");
            Json(NodeCertificates {
                client_cert: client.cert_pem,
                client_key: client.key_pem,
                serving_cert: serving.cert_pem,
                serving_key: serving.key_pem,
                proxy_cert: proxy.cert_pem,
                proxy_key: proxy.key_pem,
                ingress_cert: ingress.cert_pem,
                ingress_key: ingress.key_pem,
                cluster_dns: s.cluster_dns,
                cluster_domain: s.cluster_domain.clone(),
            })
            .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
