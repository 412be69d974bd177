//! The FailedMount event of a volume that could not be set up.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use crate::Config;

pub async fn record(client: &kube::Client, config: &Config, pod: &Pod, message: &str) {
    tracing::warn!(pod = ?pod.metadata.name, message, "FailedMount");
    let m = &pod.metadata;
    let ns = m.namespace.clone().unwrap_or_else(|| "default".into());
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let nanos = k8s_openapi::jiff::Timestamp::now().as_nanosecond();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{nanos:x}",
                m.name.as_deref().unwrap_or_default()
            )),
            namespace: Some(ns.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: m.name.clone(),
            namespace: Some(ns.clone()),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            ..Default::default()
        },
        reason: Some("FailedMount".into()),
        message: Some(message.into()),
        type_: Some("Warning".into()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(config.node_name.clone()),
        }),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(config.node_name.clone()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    };
    if let Err(e) = Api::<Event>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &event)
        .await
    {
        tracing::debug!(error = %e, "cannot record a FailedMount event");
    }
}
