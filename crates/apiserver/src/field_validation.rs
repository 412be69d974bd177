//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`): fields of a
//! request body that the type's schema does not know are refused (Strict) or reported
//! in `Warning` headers (Warn, the default), with upstream's wording.

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::query::Query;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ignore,
    Warn,
    Strict,
}

impl Mode {
    pub fn from_query(q: &Query) -> Result<Self, ApiError> {
        match q.value("fieldValidation") {
            None | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The schema a JSON schema node refers to.
fn resolve<'a>(defs: &'a Map<String, Value>, mut schema: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match r.rsplit('/').next().and_then(|name| defs.get(name)) {
            Some(next) => schema = next,
            None => break,
        }
    }
    // `allOf: [{$ref}]` wraps a reference with a description.
    if let Some([only]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return resolve(defs, only);
    }
    schema
}

/// Where the walk is: a field name or list index under its parent. The dotted path is
/// only spelled out for an unknown field, not for every field visited.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Field(parent, k) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Path::Index(parent, i) => {
                parent.render(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }

    fn to_field_path(self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        out
    }
}

fn walk(
    defs: &Map<String, Value>,
    schema: &Value,
    value: &Value,
    path: Path<'_>,
    out: &mut Vec<String>,
) {
    let schema = resolve(defs, schema);
    if schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    match value {
        Value::Object(obj) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                // A free-form object (RawExtension, `type: object` without fields).
                return;
            }
            for (k, v) in obj {
                let child = Path::Field(&path, k);
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => walk(defs, s, v, child, out),
                    (None, Some(a)) => walk(defs, a, v, child, out),
                    (None, None) => out.push(child.to_field_path()),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk(defs, item_schema, v, Path::Index(&path, i), out);
                }
            }
        }
        _ => {}
    }
}

/// The unknown fields of `body` under the schema of a built-in kind, as upstream names
/// them (`spec.containers[0].foo`); empty for kinds without a schema here.
pub fn unknown_fields(group: &str, version: &str, kind: &str, body: &Value) -> Vec<String> {
    let Some(schema) = crate::openapi::schema_of(group, version, kind) else {
        return Vec::new();
    };
    let (defs, root) = schema.as_ref();
    let mut out = Vec::new();
    walk(defs, root, body, Path::Root, &mut out);
    out
}

/// Applies `mode` to the unknown fields found: an error for Strict, warnings for Warn.
pub fn check(mode: Mode, unknown: Vec<String>) -> Result<Vec<String>, ApiError> {
    if unknown.is_empty() || mode == Mode::Ignore {
        return Ok(Vec::new());
    }
    let items: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match mode {
        Mode::Strict => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            items.join(", ")
        ))),
        _ => Ok(items),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_by_path() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "x", "imagePullPolicyy": "Always"}], "nodeSelector": {"k": "v"}}});
        let mut found = unknown_fields("", "v1", "Pod", &pod);
        found.sort();
        assert_eq!(
            found,
            ["metadata.bogus", "spec.containers[0].imagePullPolicyy"]
        );
        let err = check(Mode::Strict, found).unwrap_err();
        assert_eq!(
            err.message,
            r#"strict decoding error: unknown field "metadata.bogus", unknown field "spec.containers[0].imagePullPolicyy""#
        );
    }
}
