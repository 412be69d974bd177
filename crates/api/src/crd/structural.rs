//! Whether a CRD version's `openAPIV3Schema` is structural, as upstream's
//! `ValidateStructural` plus the schema checks of CRD validation decide: a type at
//! every level (except under x-kubernetes-int-or-string or
//! x-kubernetes-preserve-unknown-fields), no structure inside anyOf/allOf/oneOf/not
//! that the structural part lacks, metadata restricted to name and generateName, and
//! upstream's messages for each failure.

use serde_json::Value;

use super::schema::{
    additional_schema, embedded, int_or_string, items, preserves_unknown, prop_path, properties, ty,
};
use crate::validation::{FieldError, FieldErrorType};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

const JUNCTORS: [&str; 3] = ["anyOf", "allOf", "oneOf"];

fn at(path: &str, key: &str) -> String {
    super::schema::child(path, key)
}

/// The structural-schema errors of `schema` (the value of `openAPIV3Schema`) found at
/// `path` (`spec.versions[0].schema.openAPIV3Schema`), sorted as upstream sorts them.
pub fn validate(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    invariants(schema, Level::Root, path, &mut errs);
    completeness(schema, schema, path, path, &mut errs);
    errs.sort_by_key(|e| e.to_string());
    errs
}

fn invariants(s: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let t = ty(s);
    match s.get("items") {
        Some(Value::Array(_)) => errs.push(FieldError::forbidden(
            at(path, "items"),
            "items must be a schema object and not an array",
        )),
        Some(i) if i.is_object() => invariants(i, Level::Item, &at(path, "items"), errs),
        _ if t == "array" => {
            errs.push(FieldError::required(at(path, "items"), "must be specified"))
        }
        _ => {}
    }
    for (k, v) in properties(s).into_iter().flatten() {
        invariants(v, Level::Field, &prop_path(path, k), errs);
    }
    if s.get("additionalProperties").is_some() {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                at(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        let allows = s.get("additionalProperties").and_then(Value::as_bool) != Some(false);
        if allows && properties(s).is_some_and(|p| !p.is_empty()) {
            errs.push(FieldError::forbidden(
                at(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if let Some(a) = additional_schema(s) {
            invariants(a, Level::Field, &at(path, "additionalProperties"), errs);
        }
    }
    schema_keywords(s, path, errs);
    if int_or_string(s) && preserves_unknown(s) {
        errs.push(FieldError::invalid(
            at(path, "x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string(s) && embedded(s) {
        errs.push(FieldError::invalid(
            at(path, "x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = int_or_string_any_of(s.get("anyOf"));
    let skip_first_all_of = s
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|f| int_or_string_any_of(f.get("anyOf")));
    value_validation(s, skip_any_of, skip_first_all_of, path, errs);

    if embedded(s) && t != "object" {
        let msg = "must be object if x-kubernetes-embedded-resource is true";
        errs.push(if t.is_empty() {
            FieldError::required(at(path, "type"), msg)
        } else {
            FieldError::invalid(at(path, "type"), t, msg)
        });
    } else if t.is_empty() && !int_or_string(s) && !preserves_unknown(s) {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(at(path, "type"), msg));
    }
    if embedded(s) && s.get("additionalProperties").is_some() {
        errs.push(FieldError::forbidden(
            at(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !t.is_empty() && t != "object" {
        errs.push(FieldError::invalid(
            at(path, "type"),
            t,
            "must be object at the root",
        ));
    }
    meta_properties(s, lvl, path, errs);
    if embedded(s) && !preserves_unknown(s) && properties(s).is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            at(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Keywords CRD validation refuses in any schema: `$ref`, `uniqueItems: true`,
/// `x-kubernetes-preserve-unknown-fields: false`.
fn schema_keywords(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if s.get("$ref").is_some() {
        errs.push(FieldError::forbidden(
            at(path, "$ref"),
            "$ref is not supported",
        ));
    }
    if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            at(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(false)
    {
        errs.push(FieldError::invalid(
            at(path, "x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
}

/// kind and apiVersion must be strings, metadata an object restricted (at the root) to
/// name and generateName.
fn meta_properties(s: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    let Some(props) = properties(s) else { return };
    let check = lvl == Level::Root || embedded(s);
    for key in ["kind", "apiVersion"] {
        if let Some(p) = props.get(key).filter(|_| check)
            && ty(p) != "string"
        {
            let p_path = at(&prop_path(path, key), "type");
            errs.push(FieldError::invalid(p_path, ty(p), "must be string"));
        }
    }
    let Some(m) = props.get("metadata") else {
        return;
    };
    if check && ty(m) != "object" {
        let p_path = at(&prop_path(path, "metadata"), "type");
        errs.push(FieldError::invalid(p_path, ty(m), "must be object"));
    }
    if lvl != Level::Root {
        return;
    }
    let allowed = |k: &String| matches!(k.as_str(), "type" | "properties" | "default");
    let bad_props =
        properties(m).is_some_and(|p| p.keys().any(|k| k != "name" && k != "generateName"));
    if m.as_object().is_some_and(|o| o.keys().any(|k| !allowed(k))) || bad_props {
        errs.push(FieldError::forbidden(
            prop_path(path, "metadata"),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

fn int_or_string_any_of(any_of: Option<&Value>) -> bool {
    let Some([a, b]) = any_of.and_then(Value::as_array).map(Vec::as_slice) else {
        return false;
    };
    let only_type = |v: &Value, t: &str| {
        v.as_object()
            .is_some_and(|o| o.len() == 1 && o.get("type").and_then(Value::as_str) == Some(t))
    };
    only_type(a, "integer") && only_type(b, "string")
}

/// anyOf/allOf/oneOf/not may only carry value validations, and a valid `pattern`.
fn value_validation(
    s: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    for j in JUNCTORS {
        if j == "anyOf" && skip_any_of {
            continue;
        }
        for (i, n) in s
            .get(j)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let skip = j == "allOf" && i == 0 && skip_first_all_of_any_of;
            nested(n, skip, &format!("{}[{i}]", at(path, j)), errs);
        }
    }
    if let Some(n) = s.get("not") {
        nested(n, false, &at(path, "not"), errs);
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(p)
    {
        let msg = format!("must be a valid regular expression, but isn't: {e}");
        errs.push(FieldError::invalid(at(path, "pattern"), p, msg));
    }
}

fn nested(v: &Value, skip_any_of: bool, path: &str, errs: &mut Vec<FieldError>) {
    if !v.is_object() {
        return;
    }
    value_validation(v, skip_any_of, false, path, errs);
    if let Some(i) = items(v) {
        nested(i, false, &at(path, "items"), errs);
    }
    for (k, p) in properties(v).into_iter().flatten() {
        nested(p, false, &prop_path(path, k), errs);
    }
    let forbidden = |key: &str, msg: &str| FieldError::forbidden(at(path, key), msg);
    let non_empty = |key: &str| v.get(key).is_some_and(|x| x.as_str() != Some(""));
    if non_empty("type") {
        errs.push(forbidden("type", "must be empty to be structural"));
    }
    for key in ["additionalProperties", "default"] {
        if v.get(key).is_some() {
            errs.push(forbidden(key, "must be undefined to be structural"));
        }
    }
    for key in ["title", "description"] {
        if non_empty(key) {
            errs.push(forbidden(key, "must be empty to be structural"));
        }
    }
    for key in [
        "nullable",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if super::schema::flag(v, key) {
            errs.push(forbidden(key, "must be false to be structural"));
        }
    }
    if v.get("x-kubernetes-list-map-keys").is_some() {
        errs.push(forbidden(
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ));
    }
    if v.get("x-kubernetes-list-type").is_some() {
        errs.push(forbidden(
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ));
    }
    if properties(v).is_some_and(|p| p.contains_key("metadata")) {
        errs.push(forbidden_meta(path));
    }
}

fn forbidden_meta(path: &str) -> FieldError {
    FieldError::forbidden(
        prop_path(path, "metadata"),
        "must not be specified in a nested context",
    )
}

/// Every property or items named inside anyOf/allOf/oneOf/not must exist in the
/// structural part (`s`) at the same place.
fn completeness(v: &Value, s: &Value, s_path: &str, v_path: &str, errs: &mut Vec<FieldError>) {
    let mut each = |n: &Value, np: String| nested_completeness(n, s, s_path, &np, errs);
    for j in JUNCTORS {
        for (i, n) in v
            .get(j)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            each(n, format!("{}[{i}]", at(v_path, j)));
        }
    }
    if let Some(n) = v.get("not") {
        each(n, at(v_path, "not"));
    }
}

fn nested_completeness(
    v: &Value,
    s: &Value,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    if !v.is_object() {
        return;
    }
    completeness(v, s, s_path, v_path, errs);
    if let Some(vi) = items(v) {
        let (sp, vp) = (at(s_path, "items"), at(v_path, "items"));
        match items(s) {
            Some(si) => nested_completeness(vi, si, &sp, &vp, errs),
            None => errs.push(missing(sp, &vp)),
        }
    }
    for (k, vf) in properties(v).into_iter().flatten() {
        let (sp, vp) = (prop_path(s_path, k), prop_path(v_path, k));
        match properties(s).and_then(|p| p.get(k)) {
            Some(sf) => nested_completeness(vf, sf, &sp, &vp, errs),
            None => errs.push(missing(sp, &vp)),
        }
    }
}

fn missing(s_path: String, v_path: &str) -> FieldError {
    FieldError::new(
        FieldErrorType::Required,
        s_path,
        None,
        format!("because it is defined in {v_path}"),
    )
}
