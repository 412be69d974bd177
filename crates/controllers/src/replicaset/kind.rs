//! What the controller needs from a ReplicaSet or a ReplicationController: upstream
//! runs the same controller for both (converting RCs), here a trait does.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use kube::core::Selector;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::podutil::{map_selector, selector};

/// The status fields both kinds share, as written to `/status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<SetCondition>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub trait ReplicaKind:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The component named in events.
    const COMPONENT: &'static str;
    /// API group of the kind ("" for core), to recognise controller references.
    const GROUP: &'static str;

    /// `spec.replicas`, 1 when unset (the API default).
    fn replicas(&self) -> i32;
    fn selector(&self) -> Option<Selector>;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn min_ready_seconds(&self) -> i32;
    fn set_status(&self) -> SetStatus;
    fn has_status(&self) -> bool;
}

/// The accessors both kinds spell alike: their spec and status types differ but have
/// the same fields.
macro_rules! shared_accessors {
    () => {
        fn replicas(&self) -> i32 {
            self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }
        fn template(&self) -> Option<&PodTemplateSpec> {
            self.spec.as_ref()?.template.as_ref()
        }
        fn min_ready_seconds(&self) -> i32 {
            self.spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
        }
        fn has_status(&self) -> bool {
            self.status.is_some()
        }
        fn set_status(&self) -> SetStatus {
            let Some(s) = &self.status else {
                return SetStatus::default();
            };
            SetStatus {
                replicas: s.replicas,
                fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
                ready_replicas: s.ready_replicas.unwrap_or(0),
                available_replicas: s.available_replicas.unwrap_or(0),
                observed_generation: s.observed_generation.unwrap_or(0),
                conditions: s
                    .conditions
                    .iter()
                    .flatten()
                    .map(|c| SetCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                    })
                    .collect(),
            }
        }
    };
}

impl ReplicaKind for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    const GROUP: &'static str = "apps";

    fn selector(&self) -> Option<Selector> {
        selector(self.spec.as_ref().map(|s| &s.selector))
    }
    shared_accessors!();
}

impl ReplicaKind for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    const GROUP: &'static str = "";

    /// `spec.selector`, defaulting to the template's labels as the API server does.
    fn selector(&self) -> Option<Selector> {
        let spec = self.spec.as_ref()?;
        match spec.selector.as_ref().filter(|s| !s.is_empty()) {
            Some(s) => map_selector(s),
            None => map_selector(spec.template.as_ref()?.metadata.as_ref()?.labels.as_ref()?),
        }
    }
    shared_accessors!();
}
