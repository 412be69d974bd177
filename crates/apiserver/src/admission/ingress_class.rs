//! DefaultIngressClass admission: an Ingress created without a class gets the default
//! IngressClass (the one annotated `ingressclass.kubernetes.io/is-default-class:
//! "true"`; the newest when several are, ties broken by name), as upstream's plugin.
//! An Ingress naming a class, even `""`, or carrying the deprecated
//! `kubernetes.io/ingress.class` annotation is left alone.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use store::Store;

use super::{Operation, Plugin, Request};
use crate::error::ApiError;

const INGRESS_CLASSES: &str = "/registry/ingressclasses/";
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

pub struct DefaultIngressClass {
    pub store: Arc<dyn Store>,
}

/// The name of the default class among `classes`, if any.
fn default_class(classes: &[Value]) -> Option<&str> {
    classes
        .iter()
        .filter(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
        .map(|c| {
            let meta = &c["metadata"];
            let created = meta["creationTimestamp"].as_str().unwrap_or_default();
            (created, meta["name"].as_str().unwrap_or_default())
        })
        // Newest first; among equals the smallest name (RFC 3339 in UTC sorts as time).
        .max_by(|a, b| a.0.cmp(b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, name)| name)
}

/// Whether the Ingress says which class it wants.
fn names_a_class(ingress: &Value) -> bool {
    ingress
        .pointer("/spec/ingressClassName")
        .is_some_and(|v| !v.is_null())
        || ingress["metadata"]["annotations"]
            .get(CLASS_ANNOTATION)
            .is_some()
}

#[async_trait]
impl Plugin for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    async fn admit(&self, req: &mut Request<'_>) -> Result<(), ApiError> {
        let is_ingress = req.info.group == "networking.k8s.io" && req.info.plural == "ingresses";
        if !is_ingress
            || req.operation != Operation::Create
            || req.subresource.is_some()
            || names_a_class(req.object)
        {
            return Ok(());
        }
        let classes = super::priority::list(self.store.as_ref(), INGRESS_CLASSES).await?;
        if let Some(name) = default_class(&classes) {
            req.object["spec"]["ingressClassName"] = Value::from(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(name: &str, created: &str, default: Option<&str>) -> Value {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
        if let Some(d) = default {
            c["metadata"]["annotations"] = json!({DEFAULT_CLASS_ANNOTATION: d});
        }
        c
    }

    #[test]
    fn picks_the_newest_default_then_the_smallest_name() {
        let t1 = "2025-01-01T00:00:00Z";
        let t2 = "2025-06-01T00:00:00Z";
        assert_eq!(default_class(&[]), None);
        let none = [class("a", t1, None), class("b", t2, Some("false"))];
        assert_eq!(default_class(&none), None);
        let one = [class("a", t1, Some("true")), class("b", t2, None)];
        assert_eq!(default_class(&one), Some("a"));
        let newest = [
            class("old", t1, Some("true")),
            class("new", t2, Some("true")),
        ];
        assert_eq!(default_class(&newest), Some("new"));
        let tie = [
            class("z", t2, Some("true")),
            class("k8rs", t2, Some("true")),
        ];
        assert_eq!(default_class(&tie), Some("k8rs"));
    }

    #[test]
    fn a_named_class_or_the_old_annotation_is_kept() {
        assert!(!names_a_class(&json!({"spec": {}})));
        assert!(!names_a_class(&json!({"spec": {"ingressClassName": null}})));
        assert!(names_a_class(&json!({"spec": {"ingressClassName": ""}})));
        assert!(names_a_class(
            &json!({"spec": {"ingressClassName": "other"}})
        ));
        let annotated =
            json!({"metadata": {"annotations": {CLASS_ANNOTATION: "nginx"}}, "spec": {}});
        assert!(names_a_class(&annotated));
    }
}
