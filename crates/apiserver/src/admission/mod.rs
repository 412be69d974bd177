//! Admission: mutating plugins run before the registry's validation, validating plugins
//! after it, on every create, update and delete (upstream's admission chain).

mod ingress_class;
mod node_restriction;
mod pod_defaults;
mod priority;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use api::ResourceInfo;

use crate::auth::UserInfo;
use crate::error::ApiError;

pub use pod_defaults::{DEFAULT_TOLERATION_SECONDS, TolerationDefaults};
pub use priority::SYSTEM_CLASSES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// One admission request: the object (mutable for mutating plugins) and the old one.
pub struct Request<'a> {
    pub operation: Operation,
    pub info: &'a ResourceInfo,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub object: &'a mut Value,
    pub old: Option<&'a Value>,
    pub user: &'a UserInfo,
    pub dry_run: bool,
}

#[async_trait]
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Mutating phase: may change `req.object`.
    async fn admit(&self, _req: &mut Request<'_>) -> Result<(), ApiError> {
        Ok(())
    }
    /// Validating phase: may only refuse.
    async fn validate(&self, _req: &Request<'_>) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The ordered chain of plugins.
#[derive(Default)]
pub struct Admission {
    plugins: Vec<Box<dyn Plugin>>,
}

impl Admission {
    pub fn new(plugins: Vec<Box<dyn Plugin>>) -> Self {
        Self { plugins }
    }

    /// The plugins a server runs, in upstream's order.
    pub fn standard(store: Arc<dyn store::Store>, tolerations: TolerationDefaults) -> Self {
        Self::new(vec![
            Box::new(pod_defaults::PodDefaults { tolerations }),
            // After ServiceAccount admission (in PodDefaults), as upstream orders them.
            Box::new(node_restriction::NodeRestriction::new(store.clone())),
            Box::new(priority::Priority {
                store: store.clone(),
            }),
            Box::new(priority::DefaultStorageClass {
                store: store.clone(),
            }),
            Box::new(ingress_class::DefaultIngressClass { store }),
        ])
    }

    pub async fn admit(&self, req: &mut Request<'_>) -> Result<(), ApiError> {
        for p in &self.plugins {
            p.admit(req).await?;
        }
        Ok(())
    }

    pub async fn validate(&self, req: &Request<'_>) -> Result<(), ApiError> {
        for p in &self.plugins {
            p.validate(req).await?;
        }
        Ok(())
    }
}
