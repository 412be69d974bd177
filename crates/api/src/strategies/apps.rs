//! apps/v1: Deployments, ReplicaSets, DaemonSets, StatefulSets (and ControllerRevisions):
//! upstream's defaults, generation, status reset and the main validation rules.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Simple;
use super::core::pod_defaults::default_template;
use super::names::{NameRule, validate_meta};
use super::util::{child, default_field, each_mut, existing, one_of, str_at};
use super::workload::{
    immutable_selector, validate_always_restart, validate_counts, validate_selector_and_template,
};
use crate::strategy::Strategy;
use crate::validation::FieldError;

pub fn for_resource(plural: &str) -> Option<Arc<dyn Strategy>> {
    let kind = match plural {
        "deployments" => Kind::Deployment,
        "replicasets" => Kind::ReplicaSet,
        "daemonsets" => Kind::DaemonSet,
        "statefulsets" => Kind::StatefulSet,
        "controllerrevisions" => return Some(Arc::new(Simple::subdomain())),
        _ => return None,
    };
    Some(Arc::new(Workload(kind)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deployment,
    ReplicaSet,
    DaemonSet,
    StatefulSet,
}

struct Workload(Kind);

/// Upstream's message when a StatefulSet update touches another field.
pub const STATEFULSET_UPDATE_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

impl Strategy for Workload {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = existing(obj, "spec") else {
            return;
        };
        if let Some(t) = existing(spec, "template") {
            default_template(t);
        }
        match self.0 {
            Kind::Deployment => {
                default_field(spec, "replicas", json!(1));
                if let Some(strategy) = child(spec, "strategy") {
                    default_field(strategy, "type", json!("RollingUpdate"));
                    if strategy["type"] == "RollingUpdate"
                        && let Some(ru) = child(strategy, "rollingUpdate")
                    {
                        default_field(ru, "maxUnavailable", json!("25%"));
                        default_field(ru, "maxSurge", json!("25%"));
                    }
                }
                default_field(spec, "revisionHistoryLimit", json!(10));
                default_field(spec, "progressDeadlineSeconds", json!(600));
            }
            Kind::ReplicaSet => default_field(spec, "replicas", json!(1)),
            Kind::DaemonSet => {
                if let Some(strategy) = child(spec, "updateStrategy") {
                    default_field(strategy, "type", json!("RollingUpdate"));
                    if strategy["type"] == "RollingUpdate"
                        && let Some(ru) = child(strategy, "rollingUpdate")
                    {
                        default_field(ru, "maxUnavailable", json!(1));
                        default_field(ru, "maxSurge", json!(0));
                    }
                }
                default_field(spec, "revisionHistoryLimit", json!(10));
            }
            Kind::StatefulSet => default_statefulset(spec),
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        validate_counts(spec, &mut errs);
        let what = match self.0 {
            Kind::Deployment | Kind::ReplicaSet => "deployment",
            Kind::DaemonSet => "daemonset",
            Kind::StatefulSet => "statefulset",
        };
        errs.extend(validate_selector_and_template(spec, what));
        validate_always_restart(spec, &mut errs);
        match self.0 {
            Kind::Deployment => validate_deployment(spec, &mut errs),
            Kind::ReplicaSet => {}
            Kind::DaemonSet => one_of(
                &spec["updateStrategy"],
                "type",
                "spec.updateStrategy.type",
                &["OnDelete", "RollingUpdate"],
                &mut errs,
            ),
            Kind::StatefulSet => {
                one_of(
                    spec,
                    "podManagementPolicy",
                    "spec.podManagementPolicy",
                    &["OrderedReady", "Parallel"],
                    &mut errs,
                );
                one_of(
                    &spec["updateStrategy"],
                    "type",
                    "spec.updateStrategy.type",
                    &["OnDelete", "RollingUpdate"],
                    &mut errs,
                );
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable_selector(new, old));
        if self.0 == Kind::StatefulSet {
            let strip = |v: &Value| {
                let mut s = v.get("spec").cloned().unwrap_or(json!({}));
                if let Some(o) = s.as_object_mut() {
                    for k in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                        "selector",
                    ] {
                        o.remove(k);
                    }
                }
                s
            };
            if strip(new) != strip(old) {
                errs.push(FieldError::forbidden("spec", STATEFULSET_UPDATE_FORBIDDEN));
            }
        }
        errs
    }
}

fn default_statefulset(spec: &mut Value) {
    default_field(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(strategy) = child(spec, "updateStrategy") {
        if str_at(strategy, "type").is_empty() {
            strategy["type"] = json!("RollingUpdate");
            child(strategy, "rollingUpdate");
        }
        if strategy["type"] == "RollingUpdate"
            && let Some(ru) = existing(strategy, "rollingUpdate")
        {
            default_field(ru, "partition", json!(0));
        }
    }
    if let Some(policy) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        default_field(policy, "whenDeleted", json!("Retain"));
        default_field(policy, "whenScaled", json!("Retain"));
    }
    default_field(spec, "replicas", json!(1));
    default_field(spec, "revisionHistoryLimit", json!(10));
    each_mut(spec, "volumeClaimTemplates", |pvc| {
        if let Some(s) = existing(pvc, "spec") {
            default_field(s, "volumeMode", json!("Filesystem"));
        }
        if let Some(status) = child(pvc, "status") {
            default_field(status, "phase", json!("Pending"));
        }
    });
}

/// A percentage (`25%`) or a count.
fn int_or_percent(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.strip_suffix('%').and_then(|p| p.parse().ok()),
        _ => None,
    }
}

fn validate_deployment(spec: &Value, errs: &mut Vec<FieldError>) {
    let strategy = &spec["strategy"];
    one_of(
        strategy,
        "type",
        "spec.strategy.type",
        &["Recreate", "RollingUpdate"],
        errs,
    );
    let ru = strategy.get("rollingUpdate").filter(|r| !r.is_null());
    if strategy["type"] == "Recreate" && ru.is_some() {
        errs.push(FieldError::forbidden(
            "spec.strategy.rollingUpdate",
            "may not be specified when strategy `type` is 'Recreate'",
        ));
    }
    if let Some(ru) = ru {
        let unavailable = ru.get("maxUnavailable").and_then(int_or_percent);
        let surge = ru.get("maxSurge").and_then(int_or_percent);
        for (key, v) in [("maxUnavailable", unavailable), ("maxSurge", surge)] {
            let raw = ru.get(key).cloned().unwrap_or(Value::Null);
            if v.is_some_and(|n| n < 0) {
                errs.push(FieldError::invalid(
                    format!("spec.strategy.rollingUpdate.{key}"),
                    raw.clone(),
                    "must be greater than or equal to 0",
                ));
            }
            if raw.as_str().is_some_and(|s| s.ends_with('%')) && v.is_some_and(|n| n > 100) {
                errs.push(FieldError::invalid(
                    format!("spec.strategy.rollingUpdate.{key}"),
                    raw,
                    "must not be greater than 100%",
                ));
            }
        }
        if unavailable == Some(0) && surge == Some(0) {
            errs.push(FieldError::invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                ru["maxUnavailable"].clone(),
                "may not be 0 when `maxSurge` is 0",
            ));
        }
    }
    if let Some(deadline) = spec["progressDeadlineSeconds"].as_i64() {
        let min_ready = spec["minReadySeconds"].as_i64().unwrap_or(0);
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(spec: Value) -> Value {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "a"}});
        spec["template"] = json!({"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        json!({"metadata": {"name": "w"}, "spec": spec})
    }

    #[test]
    fn deployment_defaults() {
        let s = Workload(Kind::Deployment);
        let mut d = object(json!({}));
        s.default(&mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert!(s.validate(&d).is_empty(), "{:?}", s.validate(&d));
        let mut recreate = object(json!({"strategy": {"type": "Recreate"}}));
        s.default(&mut recreate);
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn daemonset_and_statefulset_defaults() {
        let mut ds = object(json!({}));
        Workload(Kind::DaemonSet).default(&mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        let mut ss =
            object(json!({"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}));
        Workload(Kind::StatefulSet).default(&mut ss);
        let spec = &ss["spec"];
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            (&spec["replicas"], &spec["revisionHistoryLimit"]),
            (&json!(1), &json!(10))
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"]["phase"],
            "Pending"
        );
    }

    #[test]
    fn validation() {
        let s = Workload(Kind::ReplicaSet);
        let mut rs = object(json!({"replicas": -1}));
        s.default(&mut rs);
        rs["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        let errs: Vec<String> = s.validate(&rs).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#,
            ]
        );
        let mut ss = object(json!({}));
        Workload(Kind::StatefulSet).default(&mut ss);
        let mut changed = ss.clone();
        changed["spec"]["serviceName"] = json!("other");
        changed["spec"]["replicas"] = json!(3);
        let errs = Workload(Kind::StatefulSet).validate_update(&changed, &ss);
        assert_eq!(
            errs[0].to_string(),
            format!("spec: Forbidden: {STATEFULSET_UPDATE_FORBIDDEN}")
        );
    }
}
