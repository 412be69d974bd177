//! OpenAPI documents built from the served resources: component schemas generated from
//! the types (with `x-kubernetes-group-version-kind` on each kind) and one path per
//! operation, carrying the query parameters kubectl looks for (`fieldValidation` on
//! PATCH tells it the server validates fields itself).

use serde_json::{Map, Value, json};

use api::ResourceInfo;
use schemars::generate::SchemaSettings;

use super::kinds;

/// Which OpenAPI dialect a document is in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V2,
    V3,
}

impl Dialect {
    fn ref_prefix(self) -> &'static str {
        match self {
            Dialect::V2 => "#/definitions/",
            Dialect::V3 => "#/components/schemas/",
        }
    }
}

fn gvk(r: &ResourceInfo, kind: &str) -> Value {
    json!({"group": r.group, "version": r.version, "kind": kind})
}

fn query(name: &str, description: &str, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V3 => {
            json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
        }
        Dialect::V2 => {
            json!({"name": name, "in": "query", "description": description, "type": "string", "uniqueItems": true})
        }
    }
}

fn write_params(dialect: Dialect, patch: bool) -> Vec<Value> {
    let mut p = vec![
        query(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            dialect,
        ),
        query(
            "fieldManager",
            "The name of the actor or entity that is making these changes.",
            dialect,
        ),
        query(
            "fieldValidation",
            "How the server handles unknown or duplicate fields: Ignore, Warn or Strict.",
            dialect,
        ),
    ];
    if patch {
        let mut force = query(
            "force",
            "Force is going to \"force\" Apply requests.",
            dialect,
        );
        match dialect {
            Dialect::V3 => force["schema"] = json!({"type": "boolean", "uniqueItems": true}),
            Dialect::V2 => force["type"] = json!("boolean"),
        }
        p.push(force);
    }
    p
}

fn path_param(name: &str, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V3 => {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}})
        }
        Dialect::V2 => {
            json!({"name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true})
        }
    }
}

fn response(schema: &Value, dialect: Dialect) -> Value {
    match dialect {
        Dialect::V3 => {
            json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}})
        }
        Dialect::V2 => json!({"200": {"description": "OK", "schema": schema}}),
    }
}

fn op(
    action: &str,
    id: &str,
    r: &ResourceInfo,
    kind: &str,
    schema: &Value,
    params: Vec<Value>,
    dialect: Dialect,
) -> Value {
    let body = matches!(action, "post" | "put" | "patch");
    let mut o = json!({
        "operationId": id,
        "parameters": params,
        "responses": response(schema, dialect),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(r, kind),
    });
    if body {
        match dialect {
            Dialect::V3 => {
                let types = if action == "patch" {
                    vec![
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/strategic-merge-patch+json",
                        "application/apply-patch+yaml",
                    ]
                } else {
                    vec!["application/json", "application/yaml"]
                };
                let content: Map<String, Value> = types
                    .into_iter()
                    .map(|t| (t.to_string(), json!({"schema": if action == "patch" { json!({"type": "object"}) } else { schema.clone() }})))
                    .collect();
                o["requestBody"] = json!({"required": true, "content": content});
            }
            Dialect::V2 => {
                let mut p = o["parameters"].as_array().cloned().unwrap_or_default();
                p.push(json!({"name": "body", "in": "body", "required": true, "schema": if action == "patch" { json!({"type": "object"}) } else { schema.clone() }}));
                o["parameters"] = json!(p);
                if action == "patch" {
                    o["consumes"] = json!([
                        "application/json-patch+json",
                        "application/merge-patch+json",
                        "application/strategic-merge-patch+json",
                        "application/apply-patch+yaml"
                    ]);
                }
            }
        }
    }
    o
}

/// Adds the paths of resource `r` to `paths`.
fn resource_paths(r: &ResourceInfo, dialect: Dialect, paths: &mut Map<String, Value>) {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let base = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let schema = json!({"$ref": format!("{}{}", dialect.ref_prefix(), definition_name(r))});
    let id = |verb: &str| format!("{verb}{}{}", r.group.replace(['.', '-'], ""), r.kind);
    let mut common = vec![];
    if r.namespaced {
        common.push(path_param("namespace", dialect));
    }
    let mut collection = Map::new();
    let mut item = Map::new();
    let has = |v: &str| r.has_verb(v);
    if has("list") {
        collection.insert(
            "get".into(),
            op("list", &id("list"), r, &r.kind, &schema, vec![], dialect),
        );
    }
    if has("create") {
        collection.insert(
            "post".into(),
            op(
                "post",
                &id("create"),
                r,
                &r.kind,
                &schema,
                write_params(dialect, false),
                dialect,
            ),
        );
    }
    if has("deletecollection") {
        collection.insert(
            "delete".into(),
            op(
                "deletecollection",
                &id("deleteCollection"),
                r,
                &r.kind,
                &schema,
                vec![],
                dialect,
            ),
        );
    }
    if has("get") {
        item.insert(
            "get".into(),
            op("get", &id("read"), r, &r.kind, &schema, vec![], dialect),
        );
    }
    if has("update") {
        item.insert(
            "put".into(),
            op(
                "put",
                &id("replace"),
                r,
                &r.kind,
                &schema,
                write_params(dialect, false),
                dialect,
            ),
        );
    }
    if has("patch") {
        item.insert(
            "patch".into(),
            op(
                "patch",
                &id("patch"),
                r,
                &r.kind,
                &schema,
                write_params(dialect, true),
                dialect,
            ),
        );
    }
    if has("delete") {
        item.insert(
            "delete".into(),
            op(
                "delete",
                &id("delete"),
                r,
                &r.kind,
                &schema,
                vec![],
                dialect,
            ),
        );
    }
    if !collection.is_empty() {
        collection.insert("parameters".into(), json!(common.clone()));
        paths.insert(base.clone(), Value::Object(collection));
    }
    if !item.is_empty() {
        let mut p = common.clone();
        p.push(path_param("name", dialect));
        item.insert("parameters".into(), json!(p));
        paths.insert(format!("{base}/{{name}}"), Value::Object(item));
    }
    for s in &r.subresources {
        if !matches!(s.name.as_str(), "status" | "scale") {
            continue;
        }
        let mut sub = Map::new();
        let sub_schema = if s.name == "scale" {
            json!({"$ref": format!("{}io.k8s.api.autoscaling.v1.Scale", dialect.ref_prefix())})
        } else {
            schema.clone()
        };
        let sub_id = |verb: &str| {
            format!(
                "{verb}{}{}{}",
                r.group.replace(['.', '-'], ""),
                r.kind,
                capitalize(&s.name)
            )
        };
        sub.insert(
            "get".into(),
            op(
                "get",
                &sub_id("read"),
                r,
                &s.kind,
                &sub_schema,
                vec![],
                dialect,
            ),
        );
        sub.insert(
            "put".into(),
            op(
                "put",
                &sub_id("replace"),
                r,
                &s.kind,
                &sub_schema,
                write_params(dialect, false),
                dialect,
            ),
        );
        sub.insert(
            "patch".into(),
            op(
                "patch",
                &sub_id("patch"),
                r,
                &s.kind,
                &sub_schema,
                write_params(dialect, true),
                dialect,
            ),
        );
        let mut p = common.clone();
        p.push(path_param("name", dialect));
        sub.insert("parameters".into(), json!(p));
        paths.insert(format!("{base}/{{name}}/{}", s.name), Value::Object(sub));
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The definition name of a built-in kind (`io.k8s.api.core.v1.Pod`); custom
/// resources get upstream's reversed-group form (`com.example.stable.v1.CronTab`).
pub fn definition_name(r: &ResourceInfo) -> String {
    let mut generator = SchemaSettings::openapi3().into_generator();
    if let Some(s) = kinds::schema_for(&mut generator, &r.group, &r.version, &r.kind)
        && let Some(name) = s
            .as_value()
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.rsplit('/').next())
    {
        return name.to_string();
    }
    let group: Vec<&str> = r.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), r.version, r.kind)
}

/// One document: the resources given, with every schema they need.
pub fn build(resources: &[&ResourceInfo], dialect: Dialect, title_version: &str) -> Value {
    let settings = match dialect {
        Dialect::V3 => SchemaSettings::openapi3(),
        Dialect::V2 => SchemaSettings::draft07().with(|s| s.meta_schema = None),
    };
    let mut generator = settings.into_generator();
    kinds::meta_schemas(&mut generator);
    let mut kinds_seen: Vec<(String, Value)> = Vec::new();
    let mut paths = Map::new();
    for r in resources {
        if let Some(s) = kinds::schema_for(&mut generator, &r.group, &r.version, &r.kind)
            && let Some(name) = s
                .as_value()
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|p| p.rsplit('/').next())
        {
            kinds_seen.push((name.to_string(), gvk(r, &r.kind)));
        }
        if r.subresource("scale").is_some() {
            let _ = kinds::schema_for(&mut generator, "autoscaling", "v1", "Scale");
        }
        resource_paths(r, dialect, &mut paths);
    }
    let mut defs = generator.take_definitions(true);
    for (name, gvk) in kinds_seen {
        if let Some(Value::Object(schema)) = defs.get_mut(&name) {
            schema.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
        }
    }
    let info = json!({"title": "Kubernetes", "version": title_version});
    match dialect {
        Dialect::V3 => {
            json!({"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": defs}})
        }
        Dialect::V2 => json!({"swagger": "2.0", "info": info, "paths": paths, "definitions": defs}),
    }
}
