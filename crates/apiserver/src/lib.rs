//! The Kubernetes API server: the REST API over HTTPS, with discovery, OpenAPI, the
//! generic registry over the store, watch, patch, and the authentication,
//! authorization and admission hooks.

pub mod admission;
pub mod allocator;
pub mod apply;
pub mod auth;
pub mod bootstrap;
pub mod components;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod field_validation;
pub mod handlers;
pub mod health;
pub mod kubelet;
pub mod managedfields;
pub mod metrics;
pub mod negotiate;
pub mod openapi;
pub mod patch;
pub mod protobuf;
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
use crate::auth::{Authenticator, AuthorizationMode, Authorizer};
use crate::registry::{Registry, Resources};

/// How to build an API server.
pub struct Options {
    pub store: Arc<dyn store::Store>,
    pub authenticator: Authenticator,
    pub server_address: String,
    pub bookmark_interval: Option<Duration>,
    pub default_watch_timeout: Duration,
    /// Where ClusterIPs come from (10.43.0.0/16).
    pub service_cidr: ipnet::IpNet,
    /// Where NodePorts come from (30000-32767).
    pub node_port_range: std::ops::RangeInclusive<u16>,
    /// Signs and verifies service account tokens.
    pub service_account_tokens: Option<auth::ServiceAccountTokens>,
    /// The not-ready/unreachable tolerations admission gives new pods.
    pub toleration_defaults: admission::TolerationDefaults,
    /// How to reach kubelets (`pods/log`, `exec`, `attach`, `portforward`).
    pub kubelet_client: Option<kubelet::KubeletClient>,
    /// `--authorization-mode`, in order (upstream's default for k8rs: Node, RBAC).
    pub authorization_modes: Vec<AuthorizationMode>,
}

/// Builds the shared state of an API server serving the built-in resources.
pub fn build(opts: Options) -> Arc<ApiState> {
    let resources = Resources::new(api::builtin::resources());
    let mut registry = Registry::new(
        opts.store.clone(),
        resources,
        Admission::standard(opts.store.clone(), opts.toleration_defaults),
    );
    registry.services = Some(Arc::new(allocator::ServiceAllocator::new(
        opts.store,
        opts.service_cidr,
        opts.node_port_range,
    )));
    let mut authenticator = opts.authenticator;
    if let Some(t) = &opts.service_account_tokens {
        authenticator.tokens.push(Arc::new(t.clone()));
    }
    let modes = &opts.authorization_modes;
    let rbac = modes
        .contains(&AuthorizationMode::Rbac)
        .then(|| Arc::new(auth::rbac::Rbac::default()));
    let node_authz = Arc::new(auth::node::NodeAuthorizer::default());
    let node: Arc<dyn Authorizer> = node_authz.clone();
    let rbac_authorizer: Arc<dyn Authorizer> = match &rbac {
        Some(r) => r.clone(),
        None => node.clone(),
    };
    let authorizer = Box::new(auth::Chain::new(modes, node, rbac_authorizer));
    let node = modes
        .contains(&AuthorizationMode::Node)
        .then_some(node_authz);
    Arc::new(ApiState {
        registry,
        authenticator,
        authorizer,
        rbac,
        node,
        anonymous_auth: !modes.contains(&AuthorizationMode::AlwaysAllow),
        server_address: opts.server_address,
        bookmark_interval: opts.bookmark_interval,
        default_watch_timeout: opts.default_watch_timeout,
        health: Default::default(),
        components: Default::default(),
        openapi: Default::default(),
        service_account_tokens: opts.service_account_tokens,
        metrics: Default::default(),
        kubelet: opts.kubelet_client,
    })
}
