//! The strategy of a custom resource: generation tracking, the status split when the
//! status subresource is on, and validation of metadata. Schema validation, pruning
//! and defaulting from the version's openAPIV3Schema plug in here.

use serde_json::Value;

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
            schema: version.pointer("/schema/openAPIV3Schema").cloned(),
            status_subresource: version.pointer("/subresources/status").is_some(),
            namespaced,
        }
    }

    pub fn schema(&self) -> Option<&Value> {
        self.schema.as_ref()
    }
}

impl Strategy for CustomResourceStrategy {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if crate::meta::name(obj).is_none() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        if self.namespaced && crate::meta::namespace(obj).is_none() {
            errs.push(FieldError::required("metadata.namespace", ""));
        }
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn resets_status_on_create(&self) -> bool {
        self.status_subresource
    }
}
