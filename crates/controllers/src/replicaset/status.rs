//! The status a set reports: how many of its pods exist, carry all template labels,
//! are ready, and have been ready for minReadySeconds; and a ReplicaFailure condition
//! while creating or deleting pods fails.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::kind::{ReplicaKind, SetCondition, SetStatus};
use crate::pods::is_ready;
use crate::podutil::is_available;

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// The new status of `set` owning the active `pods`; `manage_error` is the failure of
/// this sync's creations or deletions, if any.
pub fn calculate<K: ReplicaKind>(
    set: &K,
    pods: &[Arc<Pod>],
    manage_error: Option<&str>,
    now: Timestamp,
) -> SetStatus {
    let template_labels = set
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let min_ready = set.min_ready_seconds();
    let mut status = set.set_status();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            template_labels
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();

    let failure = status
        .conditions
        .iter()
        .position(|c| c.type_ == REPLICA_FAILURE);
    match (manage_error, failure) {
        (Some(err), None) => {
            let reason = if (pods.len() as i32) < set.replicas() {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            status.conditions.push(SetCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                last_transition_time: Some(Time(now)),
                reason: Some(reason.into()),
                message: Some(err.to_string()),
            });
        }
        (None, Some(i)) => {
            status.conditions.remove(i);
        }
        _ => {}
    }
    status.replicas = pods.len() as i32;
    status.fully_labeled_replicas = fully_labeled as i32;
    status.ready_replicas = ready as i32;
    status.available_replicas = available as i32;
    status.observed_generation = set.meta().generation.unwrap_or(0);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use serde_json::json;

    #[test]
    fn counts_labeled_ready_and_available_pods() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"replicas": 3, "minReadySeconds": 10, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}},
        }))
        .unwrap();
        let now = Timestamp::now();
        let long_ago = (now - jiff::SignedDuration::from_secs(60)).to_string();
        let just_now = now.to_string();
        let pod = |labels: serde_json::Value, ready_at: Option<&str>| -> Arc<Pod> {
            let conds = match ready_at {
                Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
                None => json!([]),
            };
            Arc::new(
                serde_json::from_value(
                    json!({"metadata": {"labels": labels}, "status": {"conditions": conds}}),
                )
                .unwrap(),
            )
        };
        let pods = vec![
            pod(json!({"app": "web", "tier": "fe"}), Some(&long_ago)),
            pod(json!({"app": "web"}), Some(&just_now)),
            pod(json!({"app": "web", "tier": "fe"}), None),
        ];
        let s = calculate(&rs, &pods, None, now);
        assert_eq!(
            (
                s.replicas,
                s.fully_labeled_replicas,
                s.ready_replicas,
                s.available_replicas
            ),
            (3, 2, 2, 1)
        );
        assert_eq!(s.observed_generation, 3);
        let failed = calculate(&rs, &pods[..1], Some("quota"), now);
        assert_eq!(failed.conditions[0].reason.as_deref(), Some("FailedCreate"));
    }
}
