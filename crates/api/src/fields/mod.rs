//! Field selectors' two halves per resource, as upstream keeps them apart:
//! which field labels a selector may name (the `AddFieldLabelConversionFunc`
//! functions in `pkg/apis/*/v*/conversion.go`, with their error messages), and the
//! values of an object's selectable fields (the registries' `GetAttrs` /
//! `ToSelectableFields`). The two lists differ: pods accept `status.podIPs` but never
//! set it, so it only matches the empty value; replica sets set `status.replicas` but
//! apps/v1 accepts only the metadata fields.

mod crd;
mod kinds;

use std::sync::Arc;

use serde_json::Value;

pub use crd::for_crd;

use crate::selectors::go_quote;

/// The selectable fields of one resource.
pub trait Fields: Send + Sync {
    /// Every selectable field of `obj` with its value as a string, as upstream's
    /// `GetAttrs` produces them. A field a selector names but this list lacks reads
    /// as the empty string.
    fn fields(&self, obj: &Value) -> Vec<(String, String)>;

    /// Upstream's field label conversion: the name under which `fields` reports the
    /// field a selector calls `label` (usually `label` itself), or the message of the
    /// 400 the API returns for a label the resource does not support.
    fn convert_label(&self, label: &str) -> Result<String, String> {
        default_conversion(label)
    }
}

/// `runtime.DefaultMetaV1FieldSelectorConversion`, for kinds without their own:
/// only `metadata.name` and `metadata.namespace`.
pub fn default_conversion(label: &str) -> Result<String, String> {
    match label {
        "metadata.name" | "metadata.namespace" => Ok(label.to_string()),
        _ => Err(format!(
            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            go_quote(label)
        )),
    }
}

/// `metadata.name` and `metadata.namespace`, which every type supports.
pub struct MetadataFields;

impl Fields for MetadataFields {
    fn fields(&self, obj: &Value) -> Vec<(String, String)> {
        metadata_fields(obj, true)
    }
}

/// Upstream's `ObjectMetaFieldsSet`: the name, and the namespace for namespaced kinds.
pub(crate) fn metadata_fields(obj: &Value, namespaced: bool) -> Vec<(String, String)> {
    let s = |f: &str| obj["metadata"][f].as_str().unwrap_or_default().to_string();
    let mut out = vec![("metadata.name".to_string(), s("name"))];
    if namespaced {
        out.push(("metadata.namespace".to_string(), s("namespace")));
    }
    out
}

/// The selectable fields of a built-in resource.
pub fn for_resource(group: &str, plural: &str) -> Arc<dyn Fields> {
    kinds::for_resource(group, plural).unwrap_or_else(|| Arc::new(MetadataFields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selectors::FieldSelector;
    use serde_json::json;

    #[test]
    fn metadata_only_kinds() {
        let f = for_resource("", "configmaps");
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(
            FieldSelector::parse("metadata.name=a,metadata.namespace=ns")
                .unwrap()
                .matches(&f.fields(&obj))
        );
        assert_eq!(
            f.convert_label("data.x").unwrap_err(),
            r#""data.x" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
    }
}
