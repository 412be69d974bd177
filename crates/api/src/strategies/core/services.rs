//! Services: upstream's defaults (type, affinity, protocols, target ports, traffic
//! policies, IP families), status reset on create, and port validation. ClusterIPs and
//! node ports are the API server's allocator's business.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::pod_validation::port_range;
use crate::strategies::names::{NameRule, check_at, dns1123_label, validate_meta};
use crate::strategies::util::{default_field, each_mut, existing, items, one_of, str_at};
use crate::strategy::Strategy;
use crate::validation::FieldError;

pub struct Services;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

impl Strategy for Services {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = existing(obj, "spec") else {
            return;
        };
        default_field(spec, "type", json!("ClusterIP"));
        default_field(spec, "sessionAffinity", json!("None"));
        if spec["sessionAffinity"] == "ClientIP" {
            default_field(
                spec,
                "sessionAffinityConfig",
                json!({"clientIP": {"timeoutSeconds": 10800}}),
            );
        }
        each_mut(spec, "ports", |p| {
            default_field(p, "protocol", json!("TCP"));
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset && let Some(port) = p.get("port").cloned() {
                p["targetPort"] = port;
            }
        });
        let kind = str_at(spec, "type").to_string();
        if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
            default_field(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if kind != "ExternalName" {
            default_field(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if kind == "LoadBalancer" {
            default_field(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = existing(obj, "spec") {
            default_ip_families(spec);
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let Some(spec) = existing(new, "spec") else {
            return;
        };
        drop_type_dependent_fields(spec, &old["spec"]);
        if spec["type"] == "ExternalName" {
            return;
        }
        for key in ["ipFamilies", "ipFamilyPolicy"] {
            if spec.get(key).is_none_or(Value::is_null)
                && let Some(v) = old.pointer(&format!("/spec/{key}"))
            {
                spec[key] = v.clone();
            }
        }
        default_ip_families(spec);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Dns1035);
        errs.extend(validate_spec(obj.get("spec").unwrap_or(&Value::Null)));
        errs
    }
}

fn needs_node_ports(spec: &Value) -> bool {
    match str_at(spec, "type") {
        "NodePort" => true,
        "LoadBalancer" => spec["allocateLoadBalancerNodePorts"] != json!(false),
        _ => false,
    }
}

/// A type change drops the fields only the old type had, when the update left them as
/// they were (upstream's `dropTypeDependentFields`): so `kubectl patch` of the type
/// alone turns a LoadBalancer into a ClusterIP Service instead of failing validation
/// on its node ports. Values the user changed are kept, and validated.
fn drop_type_dependent_fields(spec: &mut Value, old: &Value) {
    let unchanged = |spec: &Value, key: &str| spec.get(key) == old.get(key);
    if needs_node_ports(old) && !needs_node_ports(spec) {
        let new_ports = items(spec, "ports");
        let old_ports = items(old, "ports");
        let same = new_ports.iter().enumerate().all(|(i, p)| {
            let np = p["nodePort"].as_i64().unwrap_or(0);
            np == 0 || old_ports.get(i).and_then(|o| o["nodePort"].as_i64()) == Some(np)
        });
        if same {
            each_mut(spec, "ports", |p| {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
            });
        }
    }
    let was_lb = old["type"] == "LoadBalancer";
    let is_lb = spec["type"] == "LoadBalancer";
    let external = |s: &Value| matches!(str_at(s, "type"), "NodePort" | "LoadBalancer");
    let mut drop = Vec::new();
    if was_lb && !is_lb {
        drop.extend(["allocateLoadBalancerNodePorts", "loadBalancerClass"]);
    }
    if external(old) && !external(spec) {
        drop.push("externalTrafficPolicy");
    }
    if old.get("healthCheckNodePort").is_some()
        && !(is_lb && spec["externalTrafficPolicy"] == "Local")
    {
        drop.push("healthCheckNodePort");
    }
    for key in drop {
        if unchanged(spec, key)
            && let Some(o) = spec.as_object_mut()
        {
            o.remove(key);
        }
    }
}

/// What the allocator's IP-family logic settles to on a single-stack IPv4 cluster.
fn default_ip_families(spec: &mut Value) {
    if spec["type"] == "ExternalName" {
        return;
    }
    let headless = spec["clusterIP"] == "None";
    let selectorless = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    let policy = if headless && selectorless {
        "RequireDualStack"
    } else {
        "SingleStack"
    };
    default_field(spec, "ipFamilyPolicy", json!(policy));
    if items(spec, "ipFamilies").is_empty() {
        spec["ipFamilies"] = json!(["IPv4"]);
    }
}

fn validate_spec(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let kind = str_at(spec, "type");
    one_of(spec, "type", "spec.type", TYPES, &mut errs);
    one_of(
        spec,
        "sessionAffinity",
        "spec.sessionAffinity",
        &["ClientIP", "None"],
        &mut errs,
    );
    let headless = spec["clusterIP"] == "None";
    let ports = items(spec, "ports");
    if kind == "ExternalName" {
        if str_at(spec, "externalName").is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = str_at(p, "name");
        if name.is_empty() {
            if ports.len() > 1 {
                errs.push(FieldError::required(format!("{path}.name"), ""));
            }
        } else {
            check_at(
                &format!("{path}.name"),
                name,
                dns1123_label(name),
                &mut errs,
            );
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(format!("{path}.name"), name));
            }
        }
        match p.get("port").and_then(Value::as_i64) {
            Some(n) => port_range(n, &format!("{path}.port"), &mut errs),
            None => errs.push(FieldError::invalid(
                format!("{path}.port"),
                0,
                "must be between 1 and 65535, inclusive",
            )),
        }
        one_of(
            p,
            "protocol",
            &format!("{path}.protocol"),
            &["SCTP", "TCP", "UDP"],
            &mut errs,
        );
        if let Some(t) = p.get("targetPort").and_then(Value::as_i64) {
            port_range(t, &format!("{path}.targetPort"), &mut errs);
        }
        let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if node_port != 0 && matches!(kind, "ClusterIP" | "ExternalName") {
            errs.push(FieldError::forbidden(
                format!("{path}.nodePort"),
                format!("may not be used when `type` is '{kind}'"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let mut s = json!({"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80}]}});
        Services.default(&mut s);
        Services.prepare_for_create(&mut s);
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        let mut np =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]}});
        Services.default(&mut np);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
    }

    #[test]
    fn type_change_drops_what_only_the_old_type_had() {
        let old = json!({"metadata": {"name": "web"}, "spec": {
            "type": "LoadBalancer", "clusterIP": "10.43.0.5", "selector": {"app": "web"},
            "allocateLoadBalancerNodePorts": true, "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}]}});
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        Services.prepare_for_update(&mut new, &old);
        let spec = &new["spec"];
        assert!(spec["ports"][0].get("nodePort").is_none(), "{spec}");
        assert!(spec.get("allocateLoadBalancerNodePorts").is_none());
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert!(Services.validate(&new).is_empty(), "{new}");
        // A node port the update changed is the user's: kept, and refused.
        let mut changed = old.clone();
        changed["spec"]["type"] = json!("ClusterIP");
        changed["spec"]["ports"][0]["nodePort"] = json!(30081);
        Services.prepare_for_update(&mut changed, &old);
        assert_eq!(changed["spec"]["ports"][0]["nodePort"], 30081);
        // LoadBalancer to NodePort keeps the node ports.
        let mut np = old.clone();
        np["spec"]["type"] = json!("NodePort");
        Services.prepare_for_update(&mut np, &old);
        assert_eq!(np["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    }

    #[test]
    fn port_validation() {
        let msgs = |spec: Value| -> Vec<String> {
            let mut s = json!({"metadata": {"name": "web"}, "spec": spec});
            Services.default(&mut s);
            Services
                .validate(&s)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(msgs(json!({})), ["spec.ports: Required value"]);
        assert!(msgs(json!({"clusterIP": "None"})).is_empty());
        assert_eq!(
            msgs(json!({"ports": [{"port": 80, "name": "a"}, {"port": 70000}]})),
            [
                "spec.ports[1].name: Required value",
                "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ]
        );
        assert_eq!(
            msgs(json!({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]})),
            [r#"spec.ports[1].name: Duplicate value: "a""#]
        );
        assert!(
            msgs(json!({"type": "ExternalName"}))
                .contains(&"spec.externalName: Required value".to_string())
        );
    }

    #[test]
    fn service_names_are_dns1035_labels() {
        let s = json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 1}]}});
        assert!(
            Services.validate(&s)[0]
                .to_string()
                .contains("a DNS-1035 label")
        );
    }
}
