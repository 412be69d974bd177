//! Per-resource strategies: defaulting, validation and the spec/status split of each
//! built-in resource, one module per API group, after upstream's `SetDefaults_*`,
//! `Validate*` and registry strategies.

use std::sync::Arc;

use serde_json::Value;

use crate::strategy::{DefaultStrategy, Strategy};
use crate::validation::FieldError;

pub mod apps;
pub mod batch;
pub mod core;
pub mod names;
mod others;
pub mod quantity;
pub mod util;
mod workload;

pub use names::NameRule;

/// The strategy of a built-in resource.
pub fn for_resource(group: &str, plural: &str) -> Arc<dyn Strategy> {
    let found = match group {
        "" => core::for_resource(plural),
        "apps" => apps::for_resource(plural),
        "batch" => batch::for_resource(plural),
        "apiextensions.k8s.io" if plural == "customresourcedefinitions" => {
            Some(Arc::new(crate::crd::CrdStrategy) as Arc<dyn Strategy>)
        }
        other => others::for_resource(other, plural),
    };
    found.unwrap_or_else(|| Arc::new(DefaultStrategy))
}

/// A resource whose only rules are its name rule, generation tracking, status reset
/// and create-on-update, plus an optional defaulting function.
pub struct Simple {
    name: NameRule,
    generation: bool,
    reset_status: bool,
    create_on_update: bool,
    defaults: Option<fn(&mut Value)>,
}

impl Simple {
    pub fn new(name: NameRule) -> Self {
        Self {
            name,
            generation: false,
            reset_status: false,
            create_on_update: false,
            defaults: None,
        }
    }
    pub fn subdomain() -> Self {
        Self::new(NameRule::Subdomain)
    }
    pub fn tracks_generation(mut self) -> Self {
        self.generation = true;
        self
    }
    pub fn resets_status(mut self) -> Self {
        self.reset_status = true;
        self
    }
    pub fn create_on_update(mut self) -> Self {
        self.create_on_update = true;
        self
    }
    pub fn defaults(mut self, f: fn(&mut Value)) -> Self {
        self.defaults = Some(f);
        self
    }
}

impl Strategy for Simple {
    fn default(&self, obj: &mut Value) {
        if let Some(f) = self.defaults {
            f(obj);
        }
    }
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        names::validate_meta(obj, self.name)
    }
    fn tracks_generation(&self) -> bool {
        self.generation
    }
    fn resets_status_on_create(&self) -> bool {
        self.reset_status
    }
    fn allow_create_on_update(&self) -> bool {
        self.create_on_update
    }
}
