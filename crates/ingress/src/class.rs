//! Which Ingresses are ours: those of an IngressClass whose controller is
//! [`CONTROLLER`], and those naming no class while the default class is ours (the API
//! server's DefaultIngressClass admission fills the class in on create, but Ingresses
//! created before the class existed have none).

use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

/// The IngressClass the server creates.
pub const CLASS_NAME: &str = "k8rs";
/// `spec.controller` of our classes.
pub const CONTROLLER: &str = "k8rs.io/ingress";
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The class annotation of Ingresses from before IngressClass (deprecated, still honoured
/// by upstream's controllers).
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The IngressClass `k8rs`, the cluster's default.
pub fn default_class() -> IngressClass {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": CLASS_NAME,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "spec": {"controller": CONTROLLER},
    }))
    .expect("a valid IngressClass")
}

/// Creates the `k8rs` IngressClass unless it exists; an existing one is left as it is
/// (an administrator may have made another class the default).
pub async fn ensure_class(client: &kube::Client) -> Result<(), kube::Error> {
    let classes: Api<IngressClass> = Api::all(client.clone());
    if classes.get_opt(CLASS_NAME).await?.is_some() {
        return Ok(());
    }
    match classes
        .create(&PostParams::default(), &default_class())
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        r => r.map(|_| ()),
    }
}

fn is_ours(class: &IngressClass) -> bool {
    class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
}

fn is_default(class: &IngressClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether this controller serves `ingress`, given every IngressClass.
pub fn serves(ingress: &Ingress, classes: &[Arc<IngressClass>]) -> bool {
    let named = |name: &str| {
        classes
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(name) && is_ours(c))
    };
    if let Some(name) = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
    {
        return named(name);
    }
    let annotation = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION));
    if let Some(name) = annotation {
        return name == CLASS_NAME || named(name);
    }
    // The default class as admission picks it: the newest, then the smallest name.
    let default = classes.iter().filter(|c| is_default(c)).max_by(|a, b| {
        let created = |c: &IngressClass| c.metadata.creation_timestamp.clone().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| b.metadata.name.cmp(&a.metadata.name))
    });
    default.is_some_and(|c| is_ours(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, controller: &str, default: bool) -> Arc<IngressClass> {
        let mut c: IngressClass = serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"controller": controller},
        }))
        .unwrap();
        if default {
            c.metadata.annotations =
                Some([(DEFAULT_CLASS_ANNOTATION.into(), "true".into())].into());
        }
        Arc::new(c)
    }

    fn ingress(class: Option<&str>, annotation: Option<&str>) -> Ingress {
        let mut i: Ingress =
            serde_json::from_value(json!({"metadata": {"name": "i"}, "spec": {}})).unwrap();
        i.spec.as_mut().unwrap().ingress_class_name = class.map(str::to_string);
        if let Some(a) = annotation {
            i.metadata.annotations = Some([(CLASS_ANNOTATION.into(), a.into())].into());
        }
        i
    }

    #[test]
    fn serves_its_classes_and_classless_ingresses_when_default() {
        let ours = class("k8rs", CONTROLLER, true);
        let other = class("nginx", "k8s.io/ingress-nginx", false);
        let classes = [ours.clone(), other.clone()];
        assert!(serves(&ingress(Some("k8rs"), None), &classes));
        assert!(!serves(&ingress(Some("nginx"), None), &classes));
        assert!(!serves(&ingress(Some("missing"), None), &classes));
        assert!(serves(&ingress(None, None), &classes));
        assert!(serves(&ingress(None, Some("k8rs")), &classes));
        assert!(!serves(&ingress(None, Some("nginx")), &classes));
        // Another default class (not ours): classless Ingresses are its business.
        let classes = [class("k8rs", CONTROLLER, false), class("nginx", "x", true)];
        assert!(!serves(&ingress(None, None), &classes));
        assert!(serves(&ingress(Some("k8rs"), None), &classes));
        // No classes at all: nothing named is ours, nothing is the default.
        assert!(!serves(&ingress(None, None), &[]));
    }

    #[test]
    fn another_class_of_our_controller_is_ours() {
        let classes = [class("internal", CONTROLLER, false)];
        assert!(serves(&ingress(Some("internal"), None), &classes));
    }
}
