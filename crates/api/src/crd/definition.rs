//! The strategy of CustomResourceDefinitions themselves (upstream's
//! apiextensions `validation.go` and CRD strategy): defaulted names, the
//! `metadata.name == plural.group` rule, scope, versions with exactly one storage
//! version, and per-version schemas that must be structural.

use serde_json::{Value, json};

use crate::strategies::names::{
    NameRule, check_at, dns1035_label, dns1123_subdomain, validate_meta,
};
use crate::strategies::util::{immutable, invalid_rendered};
use crate::strategy::Strategy;
use crate::validation::FieldError;

pub struct CrdStrategy;

fn str_of<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

impl Strategy for CrdStrategy {
    /// `SetDefaults_CustomResourceDefinition`: singular and listKind from the kind,
    /// conversion strategy None.
    fn default(&self, obj: &mut Value) {
        let kind = str_of(obj, "/spec/names/kind").to_string();
        let Some(names) = obj
            .pointer_mut("/spec/names")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        if !kind.is_empty() {
            for (key, value) in [
                ("singular", kind.to_lowercase()),
                ("listKind", format!("{kind}List")),
            ] {
                if names
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    names.insert(key.into(), json!(value));
                }
            }
        }
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("conversion")
                .or_insert_with(|| json!({"strategy": "None"}));
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let storage: Vec<Value> = versions(obj)
            .iter()
            .filter(|v| v["storage"].as_bool() == Some(true))
            .map(|v| v["name"].clone())
            .take(1)
            .collect();
        if !storage.is_empty() && obj.pointer("/status/storedVersions").is_none() {
            if !obj["status"].is_object() {
                obj["status"] = json!({});
            }
            obj["status"]["storedVersions"] = json!(storage);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let (plural, group) = (
            str_of(obj, "/spec/names/plural"),
            str_of(obj, "/spec/group"),
        );
        if let Some(name) = crate::meta::name(obj)
            && name != format!("{plural}.{group}")
        {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                r#"must be spec.names.plural+"."+spec.group"#,
            ));
        }
        errs.extend(validate_spec(&obj["spec"]));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        // Ratcheting: what was already invalid in the old object (a CRD stored before
        // these checks existed) does not block updates such as adding a finalizer.
        let before: std::collections::HashSet<String> =
            self.validate(old).iter().map(|e| e.to_string()).collect();
        let mut errs = self.validate(new);
        errs.retain(|e| !before.contains(&e.to_string()));
        let at = |v: &'_ Value, p: &str| v.pointer(p).cloned();
        let mut fixed = vec![
            ("/spec/group", "spec.group"),
            ("/spec/names/plural", "spec.names.plural"),
        ];
        if super::is_established(old) {
            fixed.push(("/spec/scope", "spec.scope"));
            fixed.push(("/spec/names/kind", "spec.names.kind"));
        }
        for (ptr, field) in fixed {
            errs.extend(immutable(
                at(new, ptr).as_ref(),
                at(old, ptr).as_ref(),
                field,
            ));
        }
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

fn versions(obj: &Value) -> Vec<Value> {
    obj.pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Go's `%#v` of the versions, abbreviated to what identifies them.
fn render_versions(list: &[Value]) -> String {
    let one = |v: &Value| {
        format!(
            "apiextensions.CustomResourceDefinitionVersion{{Name:{:?}, Served:{}, Storage:{}, ...}}",
            v["name"].as_str().unwrap_or_default(),
            v["served"].as_bool().unwrap_or(false),
            v["storage"].as_bool().unwrap_or(false)
        )
    };
    let items: Vec<String> = list.iter().map(one).collect();
    format!(
        "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
        items.join(", ")
    )
}

fn validate_spec(spec: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = str_of(spec, "/group");
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else if !dns1123_subdomain(group).is_empty() {
        check_at("spec.group", group, dns1123_subdomain(group), &mut errs);
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            "spec.group",
            group,
            "should be a domain with at least one dot",
        ));
    }
    match str_of(spec, "/scope") {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    if spec["preserveUnknownFields"].as_bool() == Some(true) {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            true,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    let list = spec["versions"].as_array().cloned().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let mut unique = true;
    for (i, v) in list.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = v["name"].as_str().unwrap_or_default();
        unique &= seen.insert(name.to_string());
        check_at(
            &format!("{path}.name"),
            name,
            dns1035_label(name),
            &mut errs,
        );
        errs.extend(validate_version_schema(v, &path));
    }
    if !unique {
        let r = render_versions(&list);
        errs.push(invalid_rendered(
            "spec.versions",
            &r,
            "must contain unique version names",
        ));
    }
    if list
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count()
        != 1
    {
        let r = if list.is_empty() {
            "null".to_string()
        } else {
            render_versions(&list)
        };
        errs.push(invalid_rendered(
            "spec.versions",
            &r,
            "must have exactly one version marked as storage version",
        ));
    }
    errs.extend(validate_names(&spec["names"]));
    errs
}

fn validate_names(names: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in ["plural", "singular", "kind", "listKind"] {
        if names[key].as_str().is_none_or(str::is_empty) {
            errs.push(FieldError::required(format!("spec.names.{key}"), ""));
        }
    }
    for key in ["plural", "singular"] {
        let v = names[key].as_str().unwrap_or_default();
        if !v.is_empty() {
            check_at(&format!("spec.names.{key}"), v, dns1035_label(v), &mut errs);
        }
    }
    for key in ["kind", "listKind"] {
        let v = names[key].as_str().unwrap_or_default();
        if !v.is_empty() && !dns1035_label(&v.to_lowercase()).is_empty() {
            errs.push(FieldError::invalid(
                format!("spec.names.{key}"),
                v,
                "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?",
            ));
        }
    }
    errs
}

/// A version's schema: required in v1, structural, its defaults valid and its
/// `x-kubernetes-validations` compilable.
fn validate_version_schema(version: &Value, path: &str) -> Vec<FieldError> {
    let schema_path = format!("{path}.schema.openAPIV3Schema");
    let Some(schema) = version
        .pointer("/schema/openAPIV3Schema")
        .filter(|s| s.is_object())
    else {
        return vec![FieldError::required(schema_path, "schemas are required")];
    };
    let mut errs = super::structural::validate(schema, &schema_path);
    if errs.is_empty() {
        defaults_valid(schema, &schema_path, &mut errs);
        errs.extend(super::cel::validate_rules(schema, &schema_path));
    }
    errs
}

/// Each `default` must be valid against (and survive pruning by) its own schema.
fn defaults_valid(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(d) = s.get("default") {
        let at = format!("{path}.default");
        let mut pruned = d.clone();
        if d.is_object() {
            for gone in super::prune::prune_value_at(s, &mut pruned) {
                errs.push(FieldError::invalid(
                    format!("{at}.{gone}"),
                    "",
                    "must not contain unknown fields",
                ));
            }
        }
        for e in super::validate::validate_value(s, d) {
            let field = if e.field.is_empty() {
                at.clone()
            } else {
                format!("{at}.{}", e.field)
            };
            errs.push(FieldError { field, ..e });
        }
    }
    for (k, p) in super::schema::properties(s).into_iter().flatten() {
        defaults_valid(p, &super::schema::prop_path(path, k), errs);
    }
    if let Some(i) = super::schema::items(s) {
        defaults_valid(i, &format!("{path}.items"), errs);
    }
    if let Some(a) = super::schema::additional_schema(s) {
        defaults_valid(a, &format!("{path}.additionalProperties"), errs);
    }
}
