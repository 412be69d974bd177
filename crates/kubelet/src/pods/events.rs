//! Events about a pod's containers (Unhealthy, Killing, FailedPostStartHook), counted
//! as upstream's event correlator does: a repeat of the same reason and message
//! bumps the first event's count and lastTimestamp instead of making a new one.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::Mutex;

/// (reason, message) → (event name, count).
type Seen = HashMap<(String, String), (String, i32)>;

/// Records events on one pod; cheap to clone, usable from probe tasks.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
    pod: ObjectReference,
    seen: Arc<Mutex<Seen>>,
}

impl Recorder {
    pub fn new(client: kube::Client, node: &str, pod: &Pod) -> Self {
        let m = &pod.metadata;
        Recorder {
            client,
            node: node.to_string(),
            pod: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: m.name.clone(),
                namespace: Some(m.namespace.clone().unwrap_or_else(|| "default".into())),
                uid: m.uid.clone(),
                resource_version: m.resource_version.clone(),
                ..Default::default()
            },
            seen: Arc::default(),
        }
    }

    /// An event about one container (`fieldPath: spec.containers{name}`), logged too.
    pub async fn container(&self, container: &str, warning: bool, reason: &str, message: &str) {
        let path = format!("spec.containers{{{container}}}");
        self.record(Some(path), warning, reason, message).await;
    }

    /// An event about the pod as a whole (no fieldPath), logged too.
    pub async fn pod(&self, warning: bool, reason: &str, message: &str) {
        self.record(None, warning, reason, message).await;
    }

    async fn record(&self, field_path: Option<String>, warning: bool, reason: &str, message: &str) {
        let container = field_path.as_deref().unwrap_or_default();
        if warning {
            tracing::warn!(pod = ?self.pod.name, container, reason, message, "pod event");
        } else {
            tracing::info!(pod = ?self.pod.name, container, reason, message, "pod event");
        }
        let ns = self.pod.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let key = (reason.to_string(), message.to_string());
        let repeat = {
            let mut seen = self.seen.lock().await;
            seen.get_mut(&key).map(|(name, count)| {
                *count += 1;
                (name.clone(), *count)
            })
        };
        let now = Time(Timestamp::now());
        if let Some((name, count)) = repeat {
            let patch = json!({"count": count, "lastTimestamp": now});
            let r = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if let Err(e) = r {
                tracing::debug!(error = %e, reason, "cannot update an event");
            }
            return;
        }
        let name = format!(
            "{}.{:x}",
            self.pod.name.as_deref().unwrap_or_default(),
            Timestamp::now().as_nanosecond()
        );
        let mut involved = self.pod.clone();
        involved.field_path = field_path;
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                let mut seen = self.seen.lock().await;
                seen.insert(key, (name, 1));
            }
            Err(e) => tracing::debug!(error = %e, reason, "cannot record an event"),
        }
    }
}
