//! Custom resources: the resources a CustomResourceDefinition defines, with the rules
//! its schema gives them.

pub mod cel;
mod definition;
mod format;
mod prune;
pub mod schema;
mod strategy;
mod structural;
#[cfg(test)]
mod tests;
mod validate;

use std::sync::Arc;

use serde_json::Value;

pub use definition::CrdStrategy;
pub use prune::{apply_defaults, prune};
pub use strategy::CustomResourceStrategy;
pub use structural::validate as validate_structural;
pub use validate::validate as validate_object;

use crate::resource::{ResourceInfo, STANDARD_VERBS, Subresource};

/// The store prefix of a custom resource: upstream's `/registry/<group>/<plural>`.
pub fn storage_prefix(group: &str, plural: &str) -> String {
    format!("/registry/{group}/{plural}")
}

/// Whether the CRD is Established (served); set by the API server once it accepts the names.
pub fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The Table printer of one CRD version: its additionalPrinterColumns, or Name and Age.
fn printer(version: &Value) -> Arc<dyn crate::table::Printer> {
    let columns = version
        .get("additionalPrinterColumns")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    match crate::printers::crd::CrdPrinter::from_json(&columns) {
        Ok(p) => Arc::new(p),
        Err(_) => Arc::new(
            crate::printers::crd::CrdPrinter::from_json(&Value::Array(Vec::new()))
                .expect("no columns is valid"),
        ),
    }
}

/// The JSON paths of a CRD version's `selectableFields`.
fn selectable_paths(version: &Value) -> Vec<String> {
    version["selectableFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["jsonPath"].as_str().map(str::to_string))
        .collect()
}

/// One ResourceInfo per served version of the CRD. A CRD being deleted serves nothing new.
pub fn resources_for(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let (Some(kind), Some(plural)) = (names["kind"].as_str(), names["plural"].as_str()) else {
        return Vec::new();
    };
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let mut subresources = Vec::new();
            if v.pointer("/subresources/status").is_some() {
                subresources.push(Subresource {
                    name: "status".into(),
                    group: group.into(),
                    version: version.into(),
                    kind: kind.into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            if v.pointer("/subresources/scale").is_some() {
                subresources.push(Subresource {
                    name: "scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            let strategy = CustomResourceStrategy::new(v, namespaced);
            Some(ResourceInfo {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: plural.into(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                verbs: STANDARD_VERBS.iter().map(|s| s.to_string()).collect(),
                subresources,
                storage_prefix: storage_prefix(group, plural),
                strategy: Arc::new(strategy),
                printer: printer(v),
                selectable_fields: crate::fields::for_crd(&selectable_paths(v)),
                custom: true,
            })
        })
        .collect()
}
