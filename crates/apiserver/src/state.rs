//! The state every request handler shares.

use std::time::Duration;

use crate::auth::{Authenticator, Authorizer};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::registry::Registry;

pub struct ApiState {
    pub registry: Registry,
    pub authenticator: Authenticator,
    pub authorizer: Box<dyn Authorizer>,
    /// The RBAC authorizer's policy, kept current by `auth::rbac::start` (`None`
    /// when RBAC is not an authorization mode).
    pub rbac: Option<std::sync::Arc<crate::auth::rbac::Rbac>>,
    /// The Node authorizer, whose graph `auth::node::start` fills (`None` when Node
    /// is not an authorization mode).
    pub node: Option<std::sync::Arc<crate::auth::node::NodeAuthorizer>>,
    /// Whether requests without credentials are served as `system:anonymous` (off
    /// with AlwaysAllow, as upstream: they get 401 outside the health paths).
    pub anonymous_auth: bool,
    /// `host:port` clients reach this server at (discovery's serverAddressByClientCIDRs).
    pub server_address: String,
    /// How often watches that allow bookmarks get one (`None`: the default).
    pub bookmark_interval: Option<Duration>,
    /// How long a watch without `timeoutSeconds` lasts.
    pub default_watch_timeout: Duration,
    pub health: Health,
    pub components: crate::components::ComponentHealth,
    /// Rendered OpenAPI documents.
    pub openapi: crate::openapi::Cache,
    /// Issues service account tokens (TokenRequest); `None` disables the API.
    pub service_account_tokens: Option<crate::auth::ServiceAccountTokens>,
    pub metrics: Metrics,
    /// Dials kubelets for logs, exec, attach and port-forward; `None` refuses them.
    pub kubelet: Option<crate::kubelet::KubeletClient>,
}
