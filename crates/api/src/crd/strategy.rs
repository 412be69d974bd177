//! The strategy of a custom resource: its version's openAPIV3Schema applied as
//! apiextensions-apiserver applies it — unknown fields pruned, `default`s filled in,
//! the object validated — plus generation tracking and the status split when the
//! status subresource is on (both done by the generic registry).
//!
//! `x-kubernetes-validations` (CEL rules) are out of scope: accepted, not evaluated.

use serde_json::Value;

use super::{prune, validate};
use crate::strategies::names::{NameRule, validate_meta};
use crate::strategy::Strategy;
use crate::validation::FieldError;

pub struct CustomResourceStrategy {
    schema: Option<Value>,
    status_subresource: bool,
    namespaced: bool,
}

impl CustomResourceStrategy {
    /// From one entry of a CRD's `spec.versions`.
    pub fn new(version: &Value, namespaced: bool) -> Self {
        Self {
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .filter(|s| s.is_object())
                .cloned(),
            status_subresource: version.pointer("/subresources/status").is_some(),
            namespaced,
        }
    }

    pub fn schema(&self) -> Option<&Value> {
        self.schema.as_ref()
    }

    /// Pruning, then defaulting (upstream's order on decoding a request body).
    fn prune_and_default(&self, obj: &mut Value) {
        if let Some(s) = &self.schema {
            prune::prune(s, obj);
            prune::apply_defaults(s, obj);
        }
    }

    fn schema_errors(&self, obj: &Value) -> Vec<FieldError> {
        self.schema
            .as_ref()
            .map(|s| validate::validate(s, obj))
            .unwrap_or_default()
    }
}

impl Strategy for CustomResourceStrategy {
    fn default(&self, obj: &mut Value) {
        self.prune_and_default(obj);
    }

    fn prepare_for_status_update(&self, new: &mut Value, _old: &Value) {
        self.prune_and_default(new);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        if self.namespaced && crate::meta::namespace(obj).is_none() {
            errs.push(FieldError::required("metadata.namespace", ""));
        }
        errs.extend(self.schema_errors(obj));
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        self.schema_errors(new)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn resets_status_on_create(&self) -> bool {
        self.status_subresource
    }

    fn unknown_fields(&self, obj: &Value) -> Vec<String> {
        match &self.schema {
            Some(s) => prune::prune(s, &mut obj.clone()),
            None => Vec::new(),
        }
    }
}
