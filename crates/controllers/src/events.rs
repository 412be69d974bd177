//! Events about objects, as upstream controllers record them: core/v1 Events in the
//! object's namespace, with repeats of the same reason and message folded into one
//! event whose count goes up (client-go's event correlator, simplified).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use parking_lot::Mutex;

/// (namespace, object uid, reason, message): what makes two events the same.
type EventKey = (String, String, String, String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// Records events on behalf of one component (`replicaset-controller`, `default-scheduler` …).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
    host: Option<String>,
    /// Events recorded lately, to fold repeats.
    seen: Arc<Mutex<HashMap<EventKey, (String, i32)>>>,
}

impl Recorder {
    pub fn new(client: kube::Client, component: impl Into<String>) -> Self {
        Self {
            client,
            component: component.into(),
            host: None,
            seen: Default::default(),
        }
    }

    /// Events from a node-level component name the host (`source.host`).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Records an event; failures are logged, never returned (events are best effort).
    pub async fn record(
        &self,
        object: &ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        if let Err(e) = self.try_record(object, kind, reason, message).await {
            tracing::debug!(error = %e, reason, "failed to record event");
        }
    }

    async fn try_record(
        &self,
        object: &ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> kube::Result<()> {
        let ns = object
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Time(jiff::Timestamp::now());
        let key = (
            ns.clone(),
            object.uid.clone().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        let repeat = self.seen.lock().get(&key).cloned();
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({"count": count + 1, "lastTimestamp": now});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.seen.lock().insert(key, (name, count + 1));
                return Ok(());
            }
        }
        let base = object.name.clone().unwrap_or_else(|| "object".into());
        let name = format!("{base}.{:x}", jiff::Timestamp::now().as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(kind.as_str().into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        };
        api.create(&PostParams::default(), &event).await?;
        let mut seen = self.seen.lock();
        if seen.len() > 4096 {
            seen.clear();
        }
        seen.insert(key, (name, 1));
        Ok(())
    }
}

/// The reference an event points at, for any object with metadata.
pub fn reference<K: kube::Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}
