//! Field selectors of custom resources: the metadata fields plus the CRD version's
//! `selectableFields`, each named by its JSON path without the leading dot
//! (`.spec.color` selects as `spec.color`).

use std::sync::Arc;

use serde_json::Value;

use super::{Fields, default_conversion, metadata_fields};
use crate::printers::jsonpath::JsonPath;

struct CrdFields {
    /// (field name, its path; None if the path does not parse, which CRD
    /// validation rules out, so the field then always reads as empty).
    selectable: Vec<(String, Option<JsonPath>)>,
}

/// The fields of a custom resource whose CRD version lists `selectable_fields`
/// (their `jsonPath` values, e.g. `.spec.color`).
pub fn for_crd(selectable_fields: &[String]) -> Arc<dyn Fields> {
    let selectable = selectable_fields
        .iter()
        .map(|p| {
            let name = p.strip_prefix('.').unwrap_or(p).to_string();
            (name, JsonPath::parse(p).ok())
        })
        .collect();
    Arc::new(CrdFields { selectable })
}

/// How upstream renders a selectable value (`fmt.Sprint` of a string, bool or
/// integer); other types and absent fields read as empty.
fn render(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

impl Fields for CrdFields {
    fn fields(&self, obj: &Value) -> Vec<(String, String)> {
        let mut out = metadata_fields(obj, true);
        for (name, path) in &self.selectable {
            let value = path.as_ref().and_then(|p| p.first(obj));
            out.push((name.clone(), render(value)));
        }
        out
    }

    fn convert_label(&self, label: &str) -> Result<String, String> {
        if self.selectable.iter().any(|(name, _)| name == label) {
            return Ok(label.to_string());
        }
        default_conversion(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selectors::FieldSelector;
    use serde_json::json;

    #[test]
    fn selects_declared_fields() {
        let f = for_crd(&[
            ".spec.color".into(),
            ".spec.size".into(),
            ".status.ok".into(),
        ]);
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"},
                         "spec": {"color": "blue", "size": 3}, "status": {"ok": true}});
        for (sel, want) in [
            ("spec.color=blue", true),
            ("spec.size=3", true),
            ("status.ok=true", true),
            ("spec.color!=blue,metadata.name=a", false),
        ] {
            let s = FieldSelector::parse(sel)
                .unwrap()
                .convert(f.as_ref())
                .unwrap();
            assert_eq!(s.matches(&f.fields(&obj)), want, "{sel}");
        }
        assert!(f.convert_label("spec.other").is_err());
        assert_eq!(
            f.convert_label("metadata.namespace").unwrap(),
            "metadata.namespace"
        );
        assert!(for_crd(&[]).convert_label("spec.color").is_err());
    }
}
