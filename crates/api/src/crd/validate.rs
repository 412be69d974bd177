//! Validation of a custom object against its version's `openAPIV3Schema`, with the
//! messages kube-apiserver gives (go-openapi's wording, as apiextensions-apiserver
//! converts it to field errors): `spec.replicas: Invalid value: "string":
//! spec.replicas in body must be of type integer: "string"`.
//!
//! `x-kubernetes-validations` (CEL rules) are evaluated separately, by `cel/`.

use serde_json::{Map, Value};

use super::format::{check_format, go_float};
use super::schema::{child, embedded, index, int_or_string, ty, type_name};
use crate::validation::{FieldError, FieldErrorType};

/// The errors of `obj` (the whole custom object) under `schema`.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    value(schema, obj, "", true, &mut errs);
    errs
}

/// The errors of a value below the root (a `default`), with paths relative to it.
pub fn validate_value(schema: &Value, v: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    value(schema, v, "", false, &mut errs);
    errs
}

fn invalid(path: &str, v: Value, detail: String) -> FieldError {
    FieldError::new(FieldErrorType::Invalid, path, Some(v), detail)
}

fn type_error(path: &str, expected: &str, shown: Value, actual: &str) -> FieldError {
    let detail = format!("{path} in body must be of type {expected}: {actual:?}");
    FieldError::new(FieldErrorType::TypeInvalid, path, Some(shown), detail)
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "" => true,
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// Validates `v` at `path`; `root` marks the object itself (or an embedded resource),
/// whose apiVersion, kind and metadata the API server checks instead.
fn value(s: &Value, v: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    if v.is_null() && super::schema::flag(s, "nullable") {
        return;
    }
    if int_or_string(s) {
        if !(v.is_i64() || v.is_u64() || v.is_string()) {
            let actual = type_name(v);
            errs.push(type_error(path, "integer,string", actual.into(), actual));
            return;
        }
    } else if !type_matches(ty(s), v) || (v.is_null() && !ty(s).is_empty()) {
        let actual = type_name(v);
        errs.push(type_error(path, ty(s), actual.into(), actual));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let shown: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        let refs: Vec<&str> = shown.iter().map(String::as_str).collect();
        errs.push(FieldError::not_supported(path, v.clone(), &refs));
    }
    match v {
        Value::Number(_) => number(s, v, path, errs),
        Value::String(text) => string(s, text, path, errs),
        Value::Array(list) => array(s, list, path, errs),
        Value::Object(map) => object(s, map, path, root, errs),
        _ => {}
    }
    junctors(s, v, path, errs);
}

fn number(s: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let n = v.as_f64().unwrap_or_default();
    let limit = |k: &str| s.get(k).and_then(Value::as_f64);
    let exclusive = |k: &str| s.get(k).and_then(Value::as_bool) == Some(true);
    if let Some(min) = limit("minimum") {
        let (bad, word) = if exclusive("exclusiveMinimum") {
            (n <= min, "greater than")
        } else {
            (n < min, "greater than or equal to")
        };
        if bad {
            let d = format!("{path} in body should be {word} {}", go_float(min));
            errs.push(invalid(path, v.clone(), d));
        }
    }
    if let Some(max) = limit("maximum") {
        let (bad, word) = if exclusive("exclusiveMaximum") {
            (n >= max, "less than")
        } else {
            (n > max, "less than or equal to")
        };
        if bad {
            let d = format!("{path} in body should be {word} {}", go_float(max));
            errs.push(invalid(path, v.clone(), d));
        }
    }
    if let Some(m) = limit("multipleOf").filter(|m| *m > 0.0)
        && ((n / m) - (n / m).round()).abs() > 1e-9
    {
        let d = format!("{path} in body should be a multiple of {}", go_float(m));
        errs.push(invalid(path, v.clone(), d));
    }
    if s.get("format").and_then(Value::as_str) == Some("int32")
        && v.as_i64().is_none_or(|i| i32::try_from(i).is_err())
    {
        errs.push(type_error(path, "int32", v.clone(), &v.to_string()));
    }
}

fn string(s: &Value, text: &str, path: &str, errs: &mut Vec<FieldError>) {
    let len = text.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let d = format!("may not be more than {max} {unit}");
        errs.push(FieldError::new(
            FieldErrorType::TooLong,
            path,
            Some(text.into()),
            d,
        ));
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        let d = format!("{path} in body should be at least {min} chars long");
        errs.push(invalid(path, text.into(), d));
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(p).is_ok_and(|re| !re.is_match(text))
    {
        let d = format!("{path} in body should match '{p}'");
        errs.push(invalid(path, text.into(), d));
    }
    if let Some(f) = s.get("format").and_then(Value::as_str)
        && !check_format(f, text)
    {
        errs.push(type_error(path, f, text.into(), text));
    }
}

fn array(s: &Value, list: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let n = list.len() as u64;
    if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
        && n > max
    {
        let d = format!("must have at most {max} items");
        errs.push(FieldError::new(
            FieldErrorType::TooMany,
            path,
            Some(n.into()),
            d,
        ));
    }
    if let Some(min) = s.get("minItems").and_then(Value::as_u64)
        && n < min
    {
        let d = format!("{path} in body should have at least {min} items");
        errs.push(invalid(path, Value::Array(list.to_vec()), d));
    }
    if let Some(item) = super::schema::items(s) {
        for (i, x) in list.iter().enumerate() {
            value(item, x, &index(path, i), false, errs);
        }
    }
}

fn object(s: &Value, map: &Map<String, Value>, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    let resource = root || embedded(s);
    if embedded(s) && !root {
        embedded_meta(map, path, errs);
    }
    for r in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(k) = r.as_str()
            && !map.contains_key(k)
        {
            errs.push(FieldError::required(child(path, k), ""));
        }
    }
    let n = map.len() as u64;
    if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
        && n > max
    {
        let d = format!("must have at most {max} items");
        errs.push(FieldError::new(
            FieldErrorType::TooMany,
            path,
            Some(n.into()),
            d,
        ));
    }
    if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
        && n < min
    {
        let d = format!("{path} in body should have at least {min} properties");
        errs.push(invalid(path, Value::Object(map.clone()), d));
    }
    for (k, x) in map {
        if resource && k == "metadata" {
            continue;
        }
        if let Some(ks) = super::schema::field_schema(s, k) {
            value(ks, x, &child(path, k), false, errs);
        }
    }
}

/// An embedded resource needs apiVersion and kind strings (upstream's basic checks).
fn embedded_meta(map: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        match map.get(key) {
            None => errs.push(FieldError::required(child(path, key), "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => errs.push(FieldError::invalid(
                child(path, key),
                "",
                "must not be empty",
            )),
            Some(Value::String(_)) => {}
            Some(other) => errs.push(FieldError::invalid(
                child(path, key),
                other.clone(),
                "must be a string",
            )),
        }
    }
    if let Some(m) = map.get("metadata")
        && !m.is_object()
    {
        errs.push(FieldError::invalid(
            child(path, "metadata"),
            m.clone(),
            "must be an object",
        ));
    }
}

/// anyOf / allOf / oneOf / not, which in a structural schema carry value validations only.
fn junctors(s: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let list = |k: &str| {
        s.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let errors_of = |sub: &Value| {
        let mut e = Vec::new();
        value(sub, v, path, false, &mut e);
        e
    };
    for sub in list("allOf") {
        errs.extend(errors_of(&sub));
    }
    let any = list("anyOf");
    if !any.is_empty() && !any.iter().any(|sub| errors_of(sub).is_empty()) {
        let d = format!("{path} in body must validate at least one schema (anyOf)");
        errs.push(invalid(path, v.clone(), d));
    }
    let one = list("oneOf");
    if !one.is_empty() && one.iter().filter(|sub| errors_of(sub).is_empty()).count() != 1 {
        let d = format!("{path} in body must validate one and only one schema (oneOf)");
        errs.push(invalid(path, v.clone(), d));
    }
    if let Some(not) = s.get("not")
        && errors_of(not).is_empty()
    {
        let d = format!("{path} in body must not validate the schema (not)");
        errs.push(invalid(path, v.clone(), d));
    }
}
