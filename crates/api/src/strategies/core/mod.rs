//! The core ("") group: pods, services, config, namespaces, nodes, volumes and
//! replication controllers.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Simple;
use super::names::{NameRule, validate_meta};
use super::util::{child, default_field, existing, items};
use super::workload::{validate_always_restart, validate_counts, validate_selector_and_template};
use crate::strategy::Strategy;
use crate::validation::FieldError;
use pod_defaults::default_template;

mod config;
pub mod pod_defaults;
pub mod pod_validation;
mod pods;
mod services;

pub use pods::{POD_UPDATE_FORBIDDEN, qos_class};

pub fn for_resource(plural: &str) -> Option<Arc<dyn Strategy>> {
    let s: Arc<dyn Strategy> = match plural {
        "pods" => Arc::new(pods::Pods),
        "services" => Arc::new(services::Services),
        "configmaps" => Arc::new(config::ConfigMaps),
        "secrets" => Arc::new(config::Secrets),
        "namespaces" => Arc::new(Namespaces),
        "nodes" => Arc::new(Nodes),
        "persistentvolumes" => Arc::new(PersistentVolumes),
        "persistentvolumeclaims" => Arc::new(PersistentVolumeClaims),
        "replicationcontrollers" => Arc::new(ReplicationControllers),
        "podtemplates" => Arc::new(PodTemplates),
        "endpoints" | "events" | "limitranges" => Arc::new(Simple::subdomain().create_on_update()),
        "resourcequotas" => Arc::new(Simple::subdomain().resets_status()),
        "serviceaccounts" => Arc::new(Simple::subdomain()),
        _ => return None,
    };
    Some(s)
}

pub struct Namespaces;

impl Strategy for Namespaces {
    fn default(&self, obj: &mut Value) {
        let Some(name) = crate::meta::name(obj).map(str::to_string) else {
            return;
        };
        let m = crate::meta::metadata_mut(obj);
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels["kubernetes.io/metadata.name"] = json!(name);
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
        let Some(spec) = child(obj, "spec") else {
            return;
        };
        if !items(spec, "finalizers").iter().any(|f| f == "kubernetes") {
            match spec.get_mut("finalizers").and_then(Value::as_array_mut) {
                Some(list) => list.push(json!("kubernetes")),
                None => spec["finalizers"] = json!(["kubernetes"]),
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        match old.pointer("/spec/finalizers") {
            Some(f) => {
                if let Some(spec) = child(new, "spec") {
                    spec["finalizers"] = f.clone();
                }
            }
            None => {
                if let Some(spec) = existing(new, "spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_meta(obj, NameRule::Label)
    }
}

pub struct Nodes;

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
fn default_node_status(obj: &mut Value) {
    if let Some(status) = existing(obj, "status")
        && status.get("allocatable").is_none_or(Value::is_null)
        && let Some(cap) = status.get("capacity").cloned()
    {
        status["allocatable"] = cap;
    }
}

impl Strategy for Nodes {
    fn default(&self, obj: &mut Value) {
        default_node_status(obj);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = existing(obj, "spec").and_then(Value::as_object_mut) {
            spec.remove("configSource");
        }
        if let Some(status) = existing(obj, "status").and_then(Value::as_object_mut) {
            status.remove("config");
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, _old: &Value) {
        default_node_status(new);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_meta(obj, NameRule::Subdomain)
    }
}

pub struct PersistentVolumes;

impl Strategy for PersistentVolumes {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = existing(obj, "spec") {
            default_field(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            default_field(spec, "volumeMode", json!("Filesystem"));
            if let Some(h) = existing(spec, "hostPath")
                && h.get("type").is_none()
            {
                h["type"] = json!("");
            }
        }
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending", "lastPhaseTransitionTime": crate::meta::now()});
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        if items(spec, "accessModes").is_empty() {
            errs.push(FieldError::required(
                "spec.accessModes",
                "must specify at least 1 access mode",
            ));
        }
        if spec
            .get("capacity")
            .and_then(Value::as_object)
            .is_none_or(|c| c.is_empty())
        {
            errs.push(FieldError::required("spec.capacity", ""));
        }
        errs
    }
}

pub struct PersistentVolumeClaims;

impl Strategy for PersistentVolumeClaims {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = existing(obj, "spec") {
            default_field(spec, "volumeMode", json!("Filesystem"));
        }
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Pending"});
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        if items(spec, "accessModes").is_empty() {
            errs.push(FieldError::required(
                "spec.accessModes",
                "at least 1 access mode is required",
            ));
        }
        if spec.pointer("/resources/requests/storage").is_none() {
            errs.push(FieldError::required("spec.resources[storage]", ""));
        }
        errs
    }
}

pub struct ReplicationControllers;

impl Strategy for ReplicationControllers {
    fn default(&self, obj: &mut Value) {
        let labels = obj.pointer("/spec/template/metadata/labels").cloned();
        if let Some(labels) = labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty())) {
            if let Some(spec) = existing(obj, "spec")
                && spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_none_or(|m| m.is_empty())
            {
                spec["selector"] = labels.clone();
            }
            let m = crate::meta::metadata_mut(obj);
            if m.get("labels")
                .and_then(Value::as_object)
                .is_none_or(|l| l.is_empty())
            {
                m.insert("labels".into(), labels);
            }
        }
        if let Some(spec) = existing(obj, "spec") {
            default_field(spec, "replicas", json!(1));
            if let Some(t) = existing(spec, "template") {
                default_template(t);
            }
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
        // An RC's selector is a plain map; check it as matchLabels.
        let mut as_apps = spec.clone();
        if let Some(s) = spec
            .get("selector")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        {
            as_apps["selector"] = json!({"matchLabels": s});
        } else if let Some(o) = as_apps.as_object_mut() {
            o.remove("selector");
        }
        errs.extend(validate_selector_and_template(
            &as_apps,
            "replicationcontroller",
        ));
        validate_always_restart(spec, &mut errs);
        errs
    }
}

pub struct PodTemplates;

impl Strategy for PodTemplates {
    fn default(&self, obj: &mut Value) {
        if let Some(t) = existing(obj, "template") {
            default_template(t);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        errs.extend(pod_validation::validate_template(
            obj.get("template"),
            "template",
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        let mut ns = json!({"metadata": {"name": "dev"}, "status": {"phase": "Terminating"}});
        let s = Namespaces;
        s.default(&mut ns);
        crate::meta::clear_status(&mut ns);
        s.prepare_for_create(&mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "dev"
        );
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        let bad = json!({"metadata": {"name": "a.b"}});
        assert!(s.validate(&bad)[0].to_string().contains("RFC 1123 label"));
    }

    #[test]
    fn rc_selector_defaults_to_template_labels() {
        let mut rc = json!({"metadata": {"name": "r"}, "spec": {"template": {
            "metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        ReplicationControllers.default(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
        assert!(ReplicationControllers.validate(&rc).is_empty());
    }

    #[test]
    fn volumes_start_pending() {
        let mut pvc = json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        PersistentVolumeClaims.default(&mut pvc);
        PersistentVolumeClaims.prepare_for_create(&mut pvc);
        assert_eq!(pvc["status"]["phase"], "Pending");
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert!(PersistentVolumeClaims.validate(&pvc).is_empty());
    }
}
