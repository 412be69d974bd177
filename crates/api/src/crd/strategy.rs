//! The strategy of a custom resource: its version's openAPIV3Schema applied as
//! apiextensions-apiserver applies it — unknown fields pruned, `default`s filled in,
//! the object validated — plus generation tracking and the status split when the
//! status subresource is on (both done by the generic registry), and the schema's
//! `x-kubernetes-validations` CEL rules (`cel/`), compiled here once per version.

use serde_json::Value;

use super::{cel, prune, validate};
use crate::strategies::names::{NameRule, validate_meta};
use crate::strategy::Strategy;
use crate::validation::{FieldError, FieldErrorType};

pub struct CustomResourceStrategy {
    schema: Option<Value>,
    rules: Option<cel::Node>,
    status_subresource: bool,
    namespaced: bool,
}

impl CustomResourceStrategy {
    /// From one entry of a CRD's `spec.versions`.
    pub fn new(version: &Value, namespaced: bool) -> Self {
        let schema = version
            .pointer("/schema/openAPIV3Schema")
            .filter(|s| s.is_object())
            .cloned();
        Self {
            rules: schema.as_ref().and_then(cel::compile_schema),
            schema,
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

    /// Schema validation, then the CEL rules (`old`: the stored object, on update) —
    /// unless the object's types are wrong, which upstream reports instead of
    /// running rules that would fail on them.
    fn schema_errors(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let Some(s) = &self.schema else {
            return Vec::new();
        };
        let mut errs = validate::validate(s, obj);
        if let Some(rules) = &self.rules {
            let blocking = errs.iter().any(|e| {
                matches!(
                    e.kind,
                    FieldErrorType::NotSupported | FieldErrorType::TypeInvalid
                )
            });
            if blocking {
                errs.push(FieldError::invalid(
                    "<nil>",
                    "null",
                    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                ));
            } else {
                errs.extend(cel::validate(rules, obj, old));
            }
        }
        errs
    }

    fn meta_errors(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        if self.namespaced && crate::meta::namespace(obj).is_none() {
            errs.push(FieldError::required("metadata.namespace", ""));
        }
        errs
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
        let mut errs = self.meta_errors(obj);
        errs.extend(self.schema_errors(obj, None));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.meta_errors(new);
        errs.extend(self.schema_errors(new, Some(old)));
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        self.schema_errors(new, Some(old))
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
