//! OpenAPI v2 (`/openapi/v2`) and v3 (`/openapi/v3`, one document per group-version)
//! generated from the types served, cached until the set of served resources changes.

mod doc;
mod kinds;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use doc::{Dialect, build, definition_name};

use crate::error::ApiError;
use crate::state::ApiState;

/// Rendered documents, valid for one generation of the served resources.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    generation: u64,
    v3: HashMap<String, (Bytes, String)>,
    v2: Option<Bytes>,
}

fn hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(32)
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Cache {
    fn fresh(&self, state: &ApiState) -> parking_lot::MutexGuard<'_, CacheInner> {
        let generation = state.registry.resources.snapshot().generation();
        let mut inner = self.inner.lock();
        if inner.generation != generation {
            *inner = CacheInner {
                generation,
                ..Default::default()
            };
        }
        inner
    }

    /// The v3 document of one group-version path, rendering it when needed.
    pub fn v3(&self, state: &ApiState, path: &str) -> Option<(Bytes, String)> {
        if let Some(hit) = self.fresh(state).v3.get(path) {
            return Some(hit.clone());
        }
        let snap = state.registry.resources.snapshot();
        let resources: Vec<&api::ResourceInfo> = snap
            .all()
            .iter()
            .filter(|r| gv_path(&r.group, &r.version) == path)
            .map(|r| r.as_ref())
            .collect();
        if resources.is_empty() {
            return None;
        }
        let doc = build(&resources, Dialect::V3, api::KUBERNETES_VERSION);
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let entry = (bytes.clone(), hash(&bytes));
        self.fresh(state).v3.insert(path.to_string(), entry.clone());
        Some(entry)
    }

    pub fn v2(&self, state: &ApiState) -> Bytes {
        if let Some(hit) = &self.fresh(state).v2 {
            return hit.clone();
        }
        let snap = state.registry.resources.snapshot();
        let resources: Vec<&api::ResourceInfo> = snap.all().iter().map(|r| r.as_ref()).collect();
        let doc = build(&resources, Dialect::V2, api::KUBERNETES_VERSION);
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        self.fresh(state).v2 = Some(bytes.clone());
        bytes
    }
}

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/openapi/v2", get(v2))
        .route("/openapi/v3", get(v3_index))
        .route("/openapi/v3/{*path}", get(v3_doc))
}

fn json_response(bytes: Bytes, immutable: bool) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if immutable {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
    }
    resp
}

async fn v3_index(State(state): State<Arc<ApiState>>) -> Response {
    let snap = state.registry.resources.snapshot();
    let mut paths = serde_json::Map::new();
    for (group, versions) in snap.groups() {
        for v in versions {
            let path = gv_path(&group, &v);
            if let Some((_, h)) = state.openapi.v3(&state, &path) {
                paths.insert(
                    path.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={h}")}),
                );
            }
        }
    }
    json_response(
        Bytes::from(serde_json::to_vec(&json!({"paths": paths})).unwrap_or_default()),
        false,
    )
}

async fn v3_doc(State(state): State<Arc<ApiState>>, Path(path): Path<String>) -> Response {
    match state.openapi.v3(&state, path.trim_matches('/')) {
        Some((bytes, _)) => json_response(bytes, true),
        None => ApiError::path_not_found().into_response(),
    }
}

/// The v2 document in JSON; protobuf (which some clients ask for first) is not offered.
async fn v2(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json_ok = accept.is_empty()
        || accept.split(',').any(|a| {
            let a = a.split(';').next().unwrap_or_default().trim();
            matches!(a, "application/json" | "*/*" | "application/*")
        });
    if !json_ok {
        return ApiError::not_acceptable("only application/json is served for /openapi/v2")
            .into_response();
    }
    json_response(state.openapi.v2(&state), false)
}

/// The schema of a built-in kind with all definitions it refers to (for field
/// validation, which compiles and caches it): (definitions, root schema).
pub fn schema_of(
    group: &str,
    version: &str,
    kind: &str,
) -> Option<(serde_json::Map<String, Value>, Value)> {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    kinds::schema_for(&mut generator, group, version, kind)
        .map(|root| (generator.take_definitions(true), root.to_value()))
}
