//! Pruning and defaulting of custom objects by their structural schema, as
//! apiextensions-apiserver does on every write: fields the schema does not specify are
//! dropped (unless `x-kubernetes-preserve-unknown-fields`), then `default`s fill in
//! missing fields and non-nullable nulls.

use serde_json::{Map, Value};

use super::schema::{
    additional_any, additional_schema, child, embedded, index, items, preserves_unknown, properties,
};

/// Drops the fields of `obj` its schema does not know, returning their paths
/// (`spec.foo`, `spec.items[0].bar`) as field validation reports them. At the root and
/// in embedded resources `apiVersion`, `kind` and `metadata` are kept.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    prune_object_fields(schema, obj, "", true, &mut dropped);
    dropped
}

/// [`prune`] of a value below the root (a `default`), returning the dropped paths.
pub fn prune_value_at(schema: &Value, v: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    prune_value(schema, v, "", &mut dropped);
    dropped
}

fn prune_value(s: &Value, v: &mut Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(_) => prune_object_fields(s, v, path, embedded(s), out),
        Value::Array(list) => {
            if let Some(item) = items(s) {
                for (i, x) in list.iter_mut().enumerate() {
                    prune_value(item, x, &index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

fn prune_object_fields(
    s: &Value,
    v: &mut Value,
    path: &str,
    resource: bool,
    out: &mut Vec<String>,
) {
    let Some(map) = v.as_object_mut() else { return };
    let keep_all = preserves_unknown(s) || additional_any(s);
    let props = properties(s);
    let additional = additional_schema(s);
    let mut gone = Vec::new();
    for (k, x) in map.iter_mut() {
        let p = child(path, k);
        if resource && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            if k != "metadata"
                && let Some(ks) = props.and_then(|ps| ps.get(k))
            {
                prune_value(ks, x, &p, out);
            }
            continue;
        }
        match props.and_then(|ps| ps.get(k)).or(additional) {
            Some(ks) => prune_value(ks, x, &p, out),
            None if keep_all => {}
            None => {
                gone.push(k.clone());
                out.push(p);
            }
        }
    }
    for k in gone {
        map.remove(&k);
    }
}

/// Applies the schema's `default`s to `obj`: a missing property with a default gets it,
/// and so does a null one that is not nullable; a non-nullable null without a default
/// is dropped.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        default_fields(schema, map, true);
    }
}

fn default_value(s: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => default_fields(s, map, embedded(s)),
        Value::Array(list) => {
            let Some(item) = items(s) else { return };
            for x in list.iter_mut() {
                if x.is_null()
                    && !super::schema::flag(item, "nullable")
                    && let Some(d) = item.get("default")
                {
                    *x = d.clone();
                }
                default_value(item, x);
            }
        }
        _ => {}
    }
}

fn default_fields(s: &Value, map: &mut Map<String, Value>, resource: bool) {
    if let Some(props) = properties(s) {
        for (k, ps) in props {
            if resource && k == "metadata" {
                continue;
            }
            let nullable = super::schema::flag(ps, "nullable");
            match (map.get(k), ps.get("default")) {
                (None, Some(d)) => {
                    map.insert(k.clone(), d.clone());
                }
                (Some(Value::Null), Some(d)) if !nullable => {
                    map.insert(k.clone(), d.clone());
                }
                (Some(Value::Null), None) if !nullable => {
                    map.remove(k);
                }
                _ => {}
            }
        }
    }
    let props = properties(s);
    let additional = additional_schema(s);
    for (k, x) in map.iter_mut() {
        if resource && k == "metadata" {
            continue;
        }
        if let Some(ks) = props.and_then(|ps| ps.get(k)).or(additional) {
            default_value(ks, x);
        }
    }
}
