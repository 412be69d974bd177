//! `GET nodes/{name}/proxy/{path}`: relayed to the node's kubelet as is, so that
//! `kubectl get --raw /api/v1/nodes/NODE/proxy/stats/summary` (or `/metrics/resource`,
//! `/healthz`) reads the kubelet's own answer. Only GET for now.

use axum::body::Body;
use axum::response::Response;

use super::{encode, kubelet_address};
use crate::error::{ApiError, Result};
use crate::handlers::Call;

pub async fn node_proxy(call: Call) -> Result<Response> {
    let state = call.state.clone();
    let nodes = call.info.clone();
    let name = call.name().to_string();
    let segments: Vec<String> = call.ri.rest.iter().map(|s| encode(s)).collect();
    let mut path = format!("/{}", segments.join("/"));
    if let Some(q) = call.parts.uri.query() {
        path = format!("{path}?{q}");
    }
    drop(call);
    let client = state
        .kubelet
        .clone()
        .ok_or_else(|| ApiError::unavailable("this server has no kubelet client configured"))?;
    let node = state.registry.get(&nodes, None, &name).await?;
    let addr = kubelet_address(&node).ok_or_else(|| {
        ApiError::internal(format!("node {name} reports no address for its kubelet"))
    })?;
    let resp = client.send(addr, http::Request::builder(), &path).await?;
    let mut out = Response::builder().status(resp.status());
    if let Some(ct) = resp.headers().get(http::header::CONTENT_TYPE) {
        out = out.header(http::header::CONTENT_TYPE, ct);
    }
    Ok(out
        .body(Body::new(resp.into_body()))
        .expect("valid response parts"))
}
