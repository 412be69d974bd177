//! The Kubernetes API server: the REST API over HTTPS, with discovery, OpenAPI, the
//! generic registry over the store, watch, patch, and the authentication,
//! authorization and admission hooks.

pub mod admission;
pub mod apply;
pub mod auth;
pub mod bootstrap;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod handlers;
pub mod health;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod patch;
pub mod query;
pub mod registry;
pub mod request_info;
pub mod server;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

pub use error::ApiError;
pub use state::ApiState;

use crate::admission::Admission;
use crate::auth::{AllowAuthenticated, Authenticator};
use crate::registry::{Registry, Resources};

/// How to build an API server.
pub struct Options {
    pub store: Arc<dyn store::Store>,
    pub authenticator: Authenticator,
    pub server_address: String,
    pub bookmark_interval: Option<Duration>,
    pub default_watch_timeout: Duration,
}

/// Builds the shared state of an API server serving the built-in resources.
pub fn build(opts: Options) -> Arc<ApiState> {
    let resources = Resources::new(
        api::builtin::resources()
            .into_iter()
            .filter(api::builtin::is_stored)
            .collect(),
    );
    let registry = Registry::new(opts.store.clone(), resources, Admission::standard(opts.store));
    Arc::new(ApiState {
        registry,
        authenticator: opts.authenticator,
        authorizer: Box::new(AllowAuthenticated),
        server_address: opts.server_address,
        bookmark_interval: opts.bookmark_interval,
        default_watch_timeout: opts.default_watch_timeout,
        health: Default::default(),
        metrics: Default::default(),
    })
}
