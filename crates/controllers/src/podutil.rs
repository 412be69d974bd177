//! Reading pods and owner references the way upstream's controller helpers do.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::core::{Selector, SelectorExt};

use crate::pods::is_ready;

/// The controller reference of an object, if it has one.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Whether `r` names a resource of `kind` in API group `group` ("" for core).
pub fn refers_to(r: &OwnerReference, group: &str, kind: &str) -> bool {
    let ref_group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    r.kind == kind && ref_group == group
}

/// When the pod last became ready.
pub fn ready_since(p: &Pod) -> Option<Timestamp> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Ready for at least `min_ready_seconds` (upstream's IsPodAvailable).
pub fn is_available(p: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if !is_ready(p) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(p)
        .is_some_and(|t| t + SignedDuration::from_secs(i64::from(min_ready_seconds)) < now)
}

/// How long until a ready pod becomes available, if it is ready and not yet available.
pub fn until_available(
    p: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<std::time::Duration> {
    if min_ready_seconds <= 0 || !is_ready(p) {
        return None;
    }
    let at = ready_since(p)? + SignedDuration::from_secs(i64::from(min_ready_seconds));
    let left = at.duration_since(now);
    (!left.is_negative()).then(|| left.unsigned_abs() + std::time::Duration::from_millis(10))
}

pub fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// A label selector as a matcher. `None` when it is empty or invalid: controllers
/// never select everything (validation forbids it; upstream's controllers match
/// nothing for a nil selector).
pub fn selector(s: Option<&LabelSelector>) -> Option<Selector> {
    let sel = Selector::try_from(s?.clone()).ok()?;
    (!sel.selects_all()).then_some(sel)
}

/// A selector from plain `key=value` labels (ReplicationControllers).
pub fn map_selector(m: &BTreeMap<String, String>) -> Option<Selector> {
    let sel: Selector = m.clone().into_iter().collect();
    (!sel.selects_all()).then_some(sel)
}

pub fn matches(sel: &Selector, meta: &ObjectMeta) -> bool {
    match &meta.labels {
        Some(l) => sel.matches(l),
        None => sel.matches(&BTreeMap::new()),
    }
}

pub fn node_name(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// The highest restart count among the pod's containers.
pub fn max_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// `controller.kubernetes.io/pod-deletion-cost`, 0 when absent or unparsable.
pub fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn created(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.creation_timestamp.as_ref().map(|t| t.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_never_select_everything() {
        assert!(selector(None).is_none());
        assert!(selector(Some(&LabelSelector::default())).is_none());
        let s = selector(Some(&LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        }))
        .unwrap();
        let meta = |l: &[(&str, &str)]| ObjectMeta {
            labels: Some(
                l.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        assert!(matches(&s, &meta(&[("app", "web")])));
        assert!(!matches(&s, &meta(&[("app", "web"), ("tier", "db")])));
        assert!(!matches(&s, &meta(&[])));
    }

    #[test]
    fn owner_groups() {
        let r = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            ..Default::default()
        };
        assert!(refers_to(&r, "apps", "ReplicaSet"));
        assert!(!refers_to(&r, "", "ReplicaSet"));
    }
}
