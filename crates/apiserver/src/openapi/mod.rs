//! OpenAPI v2 and v3 documents, generated from the types served.

use std::sync::Arc;

use axum::Router;

use crate::state::ApiState;

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
}
