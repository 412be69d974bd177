//! Well-known user and group names (upstream's `k8s.io/apiserver/pkg/authentication/user`
//! and the names k3s gives its components).

/// The cluster administrator of the admin kubeconfig.
pub const ADMIN: &str = "system:admin";
/// The group that RBAC's `cluster-admin` binding names; members bypass authorization.
pub const MASTERS: &str = "system:masters";
/// The group of kubelets.
pub const NODES: &str = "system:nodes";
/// The API server as a client (of kubelets, and of itself).
pub const APISERVER: &str = "system:apiserver";
pub const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
pub const KUBE_SCHEDULER: &str = "system:kube-scheduler";
pub const KUBE_PROXY: &str = "system:kube-proxy";
/// The front proxy's identity in its request-header client certificate.
pub const AUTH_PROXY: &str = "system:auth-proxy";
/// Added to every authenticated user by the API server.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of every service account, and the per-namespace group's prefix.
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

/// A kubelet's user name: `system:node:<node>`.
pub fn node(node_name: &str) -> String {
    format!("system:node:{node_name}")
}

/// A service account's user name: `system:serviceaccount:<namespace>:<name>`.
pub fn service_account(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups of a service account: all service accounts, and those of its namespace.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        SERVICE_ACCOUNTS.to_string(),
        format!("{SERVICE_ACCOUNTS}:{namespace}"),
    ]
}
