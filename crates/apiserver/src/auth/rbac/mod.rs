//! The RBAC authorizer (rbac.authorization.k8s.io/v1): a request is allowed when a
//! ClusterRoleBinding, or a RoleBinding in the request's namespace, names its user,
//! one of its groups or its service account and the bound role has a rule covering it.
//! Roles and bindings are read from an in-memory [`policy::Policy`] kept current by
//! watching the registry (`spawn_sync`), never from the store per request. The
//! bootstrap policy (`bootstrap`) is created at start when missing. ClusterRole
//! aggregation is the controller manager's job (`controllers::clusterrole_aggregation`),
//! as upstream's.

pub mod bootstrap;
mod policy;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use parking_lot::RwLock;
use serde_json::Value;

pub use policy::Policy;

use super::{Attributes, Authorizer, Decision, Rules, UserInfo};
use crate::error::{ApiError, Result};
use crate::registry::{ListParams, WatchEvent, WatchParams};
use crate::state::ApiState;

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// The RBAC authorizer over its in-memory policy.
#[derive(Default)]
pub struct Rbac {
    policy: RwLock<Policy>,
}

impl Authorizer for Rbac {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        self.policy.read().authorize(user, attrs)
    }

    fn rules_for(&self, user: &UserInfo, namespace: &str) -> Option<Rules> {
        Some(self.policy.read().rules_for(user, namespace))
    }
}

/// The four kinds of the policy.
#[derive(Clone, Copy, Debug)]
enum Kind {
    ClusterRole,
    Role,
    ClusterRoleBinding,
    RoleBinding,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::ClusterRole,
        Kind::Role,
        Kind::ClusterRoleBinding,
        Kind::RoleBinding,
    ];

    fn plural(self) -> &'static str {
        match self {
            Kind::ClusterRole => "clusterroles",
            Kind::Role => "roles",
            Kind::ClusterRoleBinding => "clusterrolebindings",
            Kind::RoleBinding => "rolebindings",
        }
    }
}

impl Rbac {
    fn clear(&self, kind: Kind) {
        let mut p = self.policy.write();
        match kind {
            Kind::ClusterRole => p.clear_cluster_roles(),
            Kind::Role => p.clear_roles(),
            Kind::ClusterRoleBinding => p.clear_bindings(true),
            Kind::RoleBinding => p.clear_bindings(false),
        }
    }

    /// Applies one object as added or changed (`gone` false) or deleted.
    fn apply(&self, kind: Kind, obj: Value, gone: bool) {
        let ns = api::meta::namespace(&obj).unwrap_or_default().to_string();
        let name = api::meta::name(&obj).unwrap_or_default().to_string();
        let mut p = self.policy.write();
        if gone {
            match kind {
                Kind::ClusterRole => p.remove_cluster_role(&name),
                Kind::Role => p.remove_role(&ns, &name),
                Kind::ClusterRoleBinding => p.remove_binding("", &name),
                Kind::RoleBinding => p.remove_binding(&ns, &name),
            }
            return;
        }
        // Stored objects passed validation, so decoding fails only on a corrupt store;
        // such an object grants nothing.
        let decoded = match kind {
            Kind::ClusterRole => serde_json::from_value::<ClusterRole>(obj)
                .map(|r| p.set_cluster_role(&name, r.rules.unwrap_or_default())),
            Kind::Role => serde_json::from_value::<Role>(obj)
                .map(|r| p.set_role(&ns, &name, r.rules.unwrap_or_default())),
            Kind::ClusterRoleBinding => {
                serde_json::from_value::<ClusterRoleBinding>(obj).map(|b| {
                    p.set_binding(
                        "",
                        &name,
                        &b.role_ref,
                        b.subjects.as_deref().unwrap_or_default(),
                    )
                })
            }
            Kind::RoleBinding => serde_json::from_value::<RoleBinding>(obj).map(|b| {
                p.set_binding(
                    &ns,
                    &name,
                    &b.role_ref,
                    b.subjects.as_deref().unwrap_or_default(),
                )
            }),
        };
        if let Err(e) = decoded {
            tracing::warn!(kind = kind.plural(), %ns, %name, error = %e, "undecodable RBAC object ignored");
        }
    }
}

fn info(state: &ApiState, kind: Kind) -> Arc<api::ResourceInfo> {
    state
        .registry
        .resources
        .get(GROUP, "v1", kind.plural())
        .expect("RBAC resources are built in")
}

/// Lists one kind into the policy, returning the revision to watch from.
async fn load_kind(state: &ApiState, rbac: &Rbac, kind: Kind) -> Result<i64> {
    let page = state
        .registry
        .list(&info(state, kind), None, &ListParams::default())
        .await?;
    rbac.clear(kind);
    for obj in page.items {
        rbac.apply(kind, obj, false);
    }
    Ok(page.revision)
}

/// Creates the bootstrap policy where missing, fills the in-memory policy before the
/// server serves (so nothing is refused for want of a list) and keeps it current
/// from then on. Does nothing when RBAC is not an authorization mode. Also starts the
/// Node authorizer's graph, so every caller that starts authorization starts both.
pub async fn start(state: &Arc<ApiState>) -> Result<()> {
    super::node::start(state).await?;
    let Some(rbac) = state.rbac.clone() else {
        return Ok(());
    };
    bootstrap::ensure(&state.registry).await?;
    for kind in Kind::ALL {
        let rev = load_kind(state, &rbac, kind).await?;
        let state = state.clone();
        let rbac = rbac.clone();
        tokio::spawn(async move {
            let mut from = Some(rev);
            loop {
                if let Err(e) = follow(&state, &rbac, kind, from.take()).await {
                    tracing::warn!(kind = kind.plural(), error = %e, "RBAC watch failed; relisting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    Ok(())
}

/// Watches one kind from `from` (after a fresh list when `None`) until the watch ends.
async fn follow(state: &ApiState, rbac: &Rbac, kind: Kind, from: Option<i64>) -> Result<()> {
    let rev = match from {
        Some(r) => r,
        None => load_kind(state, rbac, kind).await?,
    };
    let params = WatchParams {
        resource_version: Some(rev.to_string()),
        ..Default::default()
    };
    let mut rx = state
        .registry
        .watch(&info(state, kind), None, params)
        .await?;
    while let Some(ev) = rx.recv().await {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                rbac.apply(kind, o.into_value(), false)
            }
            WatchEvent::Deleted(o) => rbac.apply(kind, o.into_value(), true),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => {
                return Err(ApiError::internal(format!("watch ended: {status}")));
            }
        }
    }
    Ok(())
}
