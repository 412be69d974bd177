//! The smaller groups: networking, policy, autoscaling, RBAC, coordination, discovery,
//! events, scheduling and storage.

use std::sync::Arc;

use serde_json::{Value, json};

use super::util::{default_field, each_mut, existing, items};
use super::{NameRule, Simple};
use crate::strategy::Strategy;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub fn for_resource(group: &str, plural: &str) -> Option<Arc<dyn Strategy>> {
    let s = match (group, plural) {
        ("networking.k8s.io", "ingresses") => {
            Simple::subdomain().tracks_generation().resets_status()
        }
        ("networking.k8s.io", "ingressclasses") => Simple::subdomain().tracks_generation(),
        ("networking.k8s.io", "networkpolicies") => Simple::subdomain()
            .tracks_generation()
            .defaults(network_policy_defaults),
        ("policy", "poddisruptionbudgets") => {
            Simple::subdomain().tracks_generation().resets_status()
        }
        ("autoscaling", "horizontalpodautoscalers") => Simple::new(NameRule::PathSegment)
            .resets_status()
            .defaults(hpa_defaults),
        (RBAC_GROUP, "roles" | "clusterroles") => {
            Simple::new(NameRule::PathSegment).create_on_update()
        }
        (RBAC_GROUP, "rolebindings" | "clusterrolebindings") => Simple::new(NameRule::PathSegment)
            .create_on_update()
            .defaults(binding_defaults),
        ("coordination.k8s.io", "leases") => Simple::subdomain().create_on_update(),
        ("discovery.k8s.io", "endpointslices") => Simple::subdomain()
            .create_on_update()
            .defaults(endpoint_slice_defaults),
        ("events.k8s.io", "events") => Simple::subdomain().create_on_update(),
        ("scheduling.k8s.io", "priorityclasses") => {
            Simple::subdomain().defaults(priority_class_defaults)
        }
        ("storage.k8s.io", "storageclasses") => {
            Simple::subdomain().defaults(storage_class_defaults)
        }
        _ => return None,
    };
    Some(Arc::new(s))
}

/// `SetDefaults_NetworkPolicy`: policyTypes from the rules given, ports TCP.
fn network_policy_defaults(obj: &mut Value) {
    let Some(spec) = existing(obj, "spec") else {
        return;
    };
    for key in ["ingress", "egress"] {
        each_mut(spec, key, |rule| {
            each_mut(rule, "ports", |p| {
                default_field(p, "protocol", json!("TCP"))
            });
        });
    }
    if items(spec, "policyTypes").is_empty() {
        let mut types = vec!["Ingress"];
        if !items(spec, "egress").is_empty() {
            types.push("Egress");
        }
        spec["policyTypes"] = json!(types);
    }
}

/// autoscaling/v2: at least one replica, and 80% CPU when no metric is given.
fn hpa_defaults(obj: &mut Value) {
    let Some(spec) = existing(obj, "spec") else {
        return;
    };
    default_field(spec, "minReplicas", json!(1));
    if items(spec, "metrics").is_empty() {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    }
}

/// RBAC v1: the roleRef's group and each subject's group.
fn binding_defaults(obj: &mut Value) {
    if let Some(r) = existing(obj, "roleRef") {
        default_field(r, "apiGroup", json!(RBAC_GROUP));
    }
    each_mut(obj, "subjects", |s| {
        let group = match s["kind"].as_str() {
            Some("User" | "Group") => RBAC_GROUP,
            _ => "",
        };
        if s.get("apiGroup").is_none_or(Value::is_null) && !group.is_empty() {
            s["apiGroup"] = json!(group);
        }
    });
}

fn endpoint_slice_defaults(obj: &mut Value) {
    each_mut(obj, "ports", |p| {
        default_field(p, "protocol", json!("TCP"));
        if p.get("name").is_none_or(Value::is_null) {
            p["name"] = json!("");
        }
    });
}

fn priority_class_defaults(obj: &mut Value) {
    default_field(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
}

fn storage_class_defaults(obj: &mut Value) {
    default_field(obj, "reclaimPolicy", json!("Delete"));
    default_field(obj, "volumeBindingMode", json!("Immediate"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_defaults() {
        let mut np = json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}});
        network_policy_defaults(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let mut b = json!({"roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s"}]});
        binding_defaults(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert!(b["subjects"][1].get("apiGroup").is_none());
        let mut sc = json!({"provisioner": "x"});
        storage_class_defaults(&mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");
    }

    #[test]
    fn rbac_names_may_hold_colons() {
        let s = for_resource(RBAC_GROUP, "clusterroles").unwrap();
        assert!(
            s.validate(&json!({"metadata": {"name": "system:node"}}))
                .is_empty()
        );
        assert!(s.allow_create_on_update());
    }
}
