//! Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`): fields of a
//! request body that the type's schema does not know are refused (Strict) or reported
//! in `Warning` headers (Warn, the default), with upstream's wording.

use std::fmt::Write;

use serde_json::Value;

use schema::{Compiled, Node, NodeId};

use crate::error::ApiError;
use crate::query::Query;

mod schema;

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

fn walk(schema: &Compiled, node: NodeId, value: &Value, path: Path<'_>, out: &mut Vec<String>) {
    match (&schema.nodes[node], value) {
        (Node::Object { fields, other }, Value::Object(obj)) => {
            for (k, v) in obj {
                let child = Path::Field(&path, k);
                match fields.get(k.as_str()).or(other.as_ref()) {
                    Some(&s) => walk(schema, s, v, child, out),
                    None => out.push(child.to_field_path()),
                }
            }
        }
        (Node::List(item), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                walk(schema, *item, v, Path::Index(&path, i), out);
            }
        }
        _ => {}
    }
}

/// The unknown fields of `body` under the schema of a built-in kind, as upstream names
/// them (`spec.containers[0].foo`); empty for kinds without a schema here.
pub fn unknown_fields(group: &str, version: &str, kind: &str, body: &Value) -> Vec<String> {
    let Some(schema) = schema::of(group, version, kind) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(&schema, schema::ROOT, body, Path::Root, &mut out);
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

    #[test]
    fn follows_recursive_schemas_and_leaves_free_form_fields_alone() {
        // JSONSchemaProps refers to itself; `default` and `example` are free-form JSON.
        let crd = json!({"spec": {"group": "g", "versions": [{"name": "v1", "served": true,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "string", "bogus": 1}},
                      "default": {"anything": {"goes": [1, 2]}}}}}}}]}});
        let found = unknown_fields(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            &crd,
        );
        assert_eq!(
            found,
            ["spec.versions[0].schema.openAPIV3Schema.properties.a.properties.b.bogus"]
        );
        // Map values (additionalProperties) are checked too.
        let cm =
            json!({"metadata": {"annotations": {"x": "y"}}, "data": {"k": "v"}, "binaryData": {}});
        assert!(unknown_fields("", "v1", "ConfigMap", &cm).is_empty());
        assert!(unknown_fields("nope.example.com", "v1", "Nope", &cm).is_empty());
    }
}
