//! Reading a CRD's `openAPIV3Schema` as JSON: the few keywords the structural checks,
//! pruning, defaulting and validation look at, and upstream's field-path spelling.

use serde_json::{Map, Value};

/// The schema's `type` (`""` when unset).
pub fn ty(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// A boolean keyword (`nullable`, `x-kubernetes-*`); unset is false.
pub fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

pub fn preserves_unknown(s: &Value) -> bool {
    flag(s, "x-kubernetes-preserve-unknown-fields")
}

pub fn int_or_string(s: &Value) -> bool {
    flag(s, "x-kubernetes-int-or-string")
}

pub fn embedded(s: &Value) -> bool {
    flag(s, "x-kubernetes-embedded-resource")
}

pub fn properties(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

/// `additionalProperties` when it is a schema (not a boolean).
pub fn additional_schema(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

/// `additionalProperties: true`: any field is allowed, and kept.
pub fn additional_any(s: &Value) -> bool {
    s.get("additionalProperties").and_then(Value::as_bool) == Some(true)
}

/// `items` when it is a single schema.
pub fn items(s: &Value) -> Option<&Value> {
    s.get("items").filter(|i| i.is_object())
}

/// The schema a property of an object value follows: its own, or `additionalProperties`.
pub fn field_schema<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    properties(s)
        .and_then(|p| p.get(key))
        .or_else(|| additional_schema(s))
}

/// `path.key`, or `key` at the root.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `path.properties[key]`, as upstream's `Child("properties").Key(key)`.
pub fn prop_path(path: &str, key: &str) -> String {
    format!("{}[{key}]", child(path, "properties"))
}

/// The JSON type name of a value as upstream's validator names it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
