//! Field selectors: which fields of each type `?fieldSelector=` may match, and their
//! values for an object (upstream's `GetAttrs` / `ToSelectableFields`).

use std::sync::Arc;

use serde_json::Value;

/// The selectable fields of one resource.
pub trait Fields: Send + Sync {
    /// Every selectable field of `obj` with its value as a string; fields the object
    /// lacks are present with an empty value, so that calling this on `{}` lists what
    /// a selector may use.
    fn fields(&self, obj: &Value) -> Vec<(String, String)>;
}

/// `metadata.name` and `metadata.namespace`, which every type supports.
pub struct MetadataFields;

impl Fields for MetadataFields {
    fn fields(&self, obj: &Value) -> Vec<(String, String)> {
        let s = |f: &str| obj["metadata"][f].as_str().unwrap_or_default().to_string();
        vec![
            ("metadata.name".to_string(), s("name")),
            ("metadata.namespace".to_string(), s("namespace")),
        ]
    }
}

/// The selectable fields of a built-in resource.
pub fn for_resource(_group: &str, _plural: &str) -> Arc<dyn Fields> {
    Arc::new(MetadataFields)
}
