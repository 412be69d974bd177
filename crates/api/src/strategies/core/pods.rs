//! Pods: defaults, status reset to Pending with the QoS class on create, validation,
//! and upstream's short list of fields an update may change.

use serde_json::{Value, json};

use super::pod_defaults::default_pod;
use super::pod_validation::validate_pod_spec;
use crate::meta;
use crate::strategies::names::{NameRule, validate_meta};
use crate::strategies::quantity::nanos_of;
use crate::strategies::util::items;
use crate::strategy::Strategy;
use crate::validation::FieldError;

pub struct Pods;

/// Upstream's message when an update touches a field it may not.
pub const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

impl Strategy for Pods {
    fn default(&self, obj: &mut Value) {
        default_pod(obj);
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        let mut status = json!({"phase": "Pending", "qosClass": qos});
        if !items(&obj["spec"], "schedulingGates").is_empty() {
            status["conditions"] = json!([{
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastProbeTime": null,
                "lastTransitionTime": meta::now(),
            }]);
        }
        obj["status"] = status;
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        errs.extend(validate_pod_spec(
            obj.get("spec").unwrap_or(&Value::Null),
            "spec",
        ));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(validate_spec_update(&new["spec"], &old["spec"]));
        errs
    }
}

/// Upstream's `GetPodQOS` over cpu and memory of the (init) containers.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut requests: Vec<(String, i128)> = Vec::new();
    let mut limits: Vec<(String, i128)> = Vec::new();
    let mut guaranteed = true;
    let add = |sum: &mut Vec<(String, i128)>, name: &str, n: i128| match sum
        .iter_mut()
        .find(|(k, _)| k == name)
    {
        Some((_, v)) => *v += n,
        None => sum.push((name.to_string(), n)),
    };
    let containers = items(spec, "containers")
        .iter()
        .chain(items(spec, "initContainers"));
    for c in containers {
        for (kind, sum) in [("requests", &mut requests), ("limits", &mut limits)] {
            let mut found = Vec::new();
            for name in ["cpu", "memory"] {
                let amount = c
                    .pointer(&format!("/resources/{kind}/{name}"))
                    .and_then(nanos_of)
                    .filter(|n| *n > 0);
                if let Some(n) = amount {
                    add(sum, name, n);
                    found.push(name);
                }
            }
            if kind == "limits" && found.len() < 2 {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        let all_match = requests
            .iter()
            .all(|(k, r)| limits.iter().any(|(lk, l)| lk == k && l == r));
        if all_match && requests.len() == limits.len() {
            return "Guaranteed";
        }
    }
    "Burstable"
}

/// Upstream's `ValidatePodUpdate` for the spec: with the fields an update may change
/// taken from the old pod, the rest must be equal.
fn validate_spec_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut munged = new.clone();
    for key in ["containers", "initContainers"] {
        if let (Some(n), Some(o)) = (
            munged.get_mut(key).and_then(Value::as_array_mut),
            old.get(key).and_then(Value::as_array),
        ) && n.len() == o.len()
        {
            for (nc, oc) in n.iter_mut().zip(o) {
                if let Some(img) = oc.get("image") {
                    nc["image"] = img.clone();
                }
            }
        }
    }
    match (
        old["activeDeadlineSeconds"].as_i64(),
        new["activeDeadlineSeconds"].as_i64(),
    ) {
        (Some(_), None) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (Some(o), Some(n)) if n > o => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            n,
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    copy(&mut munged, old, "activeDeadlineSeconds");
    let old_tolerations = items(old, "tolerations");
    let kept = old_tolerations.iter().all(|t| {
        items(new, "tolerations")
            .iter()
            .any(|n| same_toleration(n, t))
    });
    if kept {
        copy(&mut munged, old, "tolerations");
    } else {
        errs.push(FieldError::forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
        copy(&mut munged, old, "tolerations");
    }
    let old_gates = items(old, "schedulingGates");
    if items(new, "schedulingGates")
        .iter()
        .all(|g| old_gates.contains(g))
    {
        copy(&mut munged, old, "schedulingGates");
    }
    if old["terminationGracePeriodSeconds"]
        .as_i64()
        .is_some_and(|g| g < 0)
        && new["terminationGracePeriodSeconds"].as_i64() == Some(1)
    {
        copy(&mut munged, old, "terminationGracePeriodSeconds");
    }
    if munged != *old {
        errs.push(FieldError::forbidden(
            "spec",
            format!("{POD_UPDATE_FORBIDDEN}\n{}", spec_diff(old, &munged)),
        ));
    }
    errs
}

/// Tolerations equal but for `tolerationSeconds`.
fn same_toleration(a: &Value, b: &Value) -> bool {
    ["key", "operator", "value", "effect"]
        .iter()
        .all(|k| a.get(*k).filter(|v| !v.is_null()) == b.get(*k).filter(|v| !v.is_null()))
}

fn copy(target: &mut Value, from: &Value, key: &str) {
    let Some(t) = target.as_object_mut() else {
        return;
    };
    match from.get(key) {
        Some(v) => t.insert(key.to_string(), v.clone()),
        None => t.remove(key),
    };
}

/// A short `-old +new` listing of the top-level spec fields that differ.
fn spec_diff(old: &Value, new: &Value) -> String {
    let mut keys: Vec<&String> = old
        .as_object()
        .into_iter()
        .chain(new.as_object())
        .flat_map(|m| m.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (a, b) = (old.get(k), new.get(k));
        if a != b {
            let show = |v: Option<&Value>| v.map_or("nil".to_string(), Value::to_string);
            out.push_str(&format!("-\t{k}: {},\n+\t{k}: {},\n", show(a), show(b)));
        }
    }
    out.push_str("  }\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "x", "resources": resources}]}})
    }

    #[test]
    fn qos_classes() {
        let class = |r: Value| {
            let mut p = pod(r);
            Pods.default(&mut p);
            qos_class(&p["spec"])
        };
        assert_eq!(class(json!({})), "BestEffort");
        assert_eq!(class(json!({"requests": {"cpu": "1"}})), "Burstable");
        assert_eq!(
            class(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            "Guaranteed"
        );
        assert_eq!(
            class(json!({"limits": {"cpu": "1", "memory": "1Gi"},
                "requests": {"cpu": "1000m", "memory": "1073741824"}})),
            "Guaranteed"
        );
        assert_eq!(
            class(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})),
            "Burstable"
        );
    }

    #[test]
    fn create_resets_status() {
        let mut p = pod(json!({}));
        p["status"] = json!({"phase": "Running"});
        Pods.default(&mut p);
        crate::meta::clear_status(&mut p);
        Pods.prepare_for_create(&mut p);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn updates_may_only_change_images_and_a_few_fields() {
        let mut old = pod(json!({}));
        Pods.default(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("y");
        new["spec"]["activeDeadlineSeconds"] = json!(10);
        new["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
        assert!(Pods.validate_update(&new, &old).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        let errs = Pods.validate_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with(&format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}\n"))
        );
    }
}
