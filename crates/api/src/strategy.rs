//! The per-resource half of upstream's "generic registry + strategy" pattern. The API
//! server's generic registry runs, in a fixed order: decode → [`Strategy::default`] →
//! `prepare_for_*` → `validate*` → metadata checks → store. A resource only says what
//! differs from the defaults here.

use serde_json::Value;

use crate::validation::FieldError;

pub trait Strategy: Send + Sync {
    /// Upstream's `SetDefaults_*` for this type. Runs on every create and update body.
    fn default(&self, _obj: &mut Value) {}

    /// Runs on create after defaulting: reset status, compute derived fields …
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Runs on an update of the main resource after defaulting. When the resource has a
    /// status subresource, the registry has already copied the old status over.
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Validation of an update; immutable fields are checked here.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        self.validate(new)
    }

    /// Runs on a `/status` update. The registry has already copied everything but
    /// `status` from the old object.
    fn prepare_for_status_update(&self, _new: &mut Value, _old: &Value) {}

    fn validate_status_update(&self, _new: &Value, _old: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// Whether `metadata.generation` is kept: 1 on create, +1 on each spec change.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// Whether a create resets `status` (most workload types do; nodes do not).
    fn resets_status_on_create(&self) -> bool {
        false
    }

    /// Whether a PUT of a missing object creates it (upstream: only a few types).
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// The fields of a request body this type's schema does not know and would drop
    /// (custom resources: pruning), for `?fieldValidation=`; paths as `spec.foo`.
    fn unknown_fields(&self, _obj: &Value) -> Vec<String> {
        Vec::new()
    }

    /// Warnings returned to the client in `Warning` headers.
    fn warnings(&self, _obj: &Value) -> Vec<String> {
        Vec::new()
    }
}

/// The strategy of a resource with no rules of its own.
pub struct DefaultStrategy;

impl Strategy for DefaultStrategy {}
