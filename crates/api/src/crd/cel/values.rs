//! A custom object's JSON as the CEL value a rule sees, typed by its schema as
//! upstream types it: `integer` as int (never uint), `number` as double even when
//! written without a fraction, objects (with properties or additionalProperties) as
//! maps keyed by field name, int-or-string and preserve-unknown-fields values by what
//! the JSON holds. At the root of a resource (and of an embedded one) only
//! `apiVersion`, `kind` and `metadata.name` / `metadata.generateName` are visible.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value as Cel;
use cel::objects::{Key, Map};
use serde_json::Value;

use super::super::schema::{embedded, field_schema, items, ty};

/// `v` under `schema`; `root` marks the object itself.
pub fn to_cel(schema: &Value, v: &Value, root: bool) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => number(schema, n),
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(list) => {
            let item = items(schema);
            let out = list
                .iter()
                .map(|x| to_cel(item.unwrap_or(&Value::Null), x, false));
            Cel::List(Arc::new(out.collect()))
        }
        Value::Object(map) => {
            let resource = root || embedded(schema);
            let mut out: HashMap<Key, Cel> = HashMap::with_capacity(map.len());
            for (k, x) in map {
                let value = if resource && k == "metadata" {
                    resource_meta(x)
                } else {
                    let s = field_schema(schema, k).unwrap_or(&Value::Null);
                    to_cel(s, x, false)
                };
                out.insert(Key::String(Arc::new(k.clone())), value);
            }
            Cel::Map(Map { map: Arc::new(out) })
        }
    }
}

fn number(schema: &Value, n: &serde_json::Number) -> Cel {
    if ty(schema) == "number" {
        return Cel::Float(n.as_f64().unwrap_or_default());
    }
    match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => Cel::Int(i),
        // Beyond int64: upstream's int cannot hold it either; keep the magnitude.
        (None, Some(u)) => Cel::Float(u as f64),
        _ => Cel::Float(n.as_f64().unwrap_or_default()),
    }
}

/// The part of ObjectMeta rules may read: name and generateName.
fn resource_meta(meta: &Value) -> Cel {
    let mut out: HashMap<Key, Cel> = HashMap::new();
    for key in ["name", "generateName"] {
        if let Some(s) = meta.get(key).and_then(Value::as_str) {
            out.insert(
                Key::String(Arc::new(key.to_string())),
                Cel::String(Arc::new(s.to_string())),
            );
        }
    }
    Cel::Map(Map { map: Arc::new(out) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_follow_the_schema() {
        let s = json!({"type": "object", "properties": {
            "i": {"type": "integer"}, "d": {"type": "number"}, "x": {"x-kubernetes-int-or-string": true}
        }});
        let v = to_cel(&s, &json!({"i": 3, "d": 3, "x": 4}), false);
        let Cel::Map(m) = v else { panic!("map") };
        let get = |k: &str| m.map.get(&Key::String(Arc::new(k.into()))).cloned();
        assert_eq!(get("i"), Some(Cel::Int(3)));
        assert_eq!(get("d"), Some(Cel::Float(3.0)));
        assert_eq!(get("x"), Some(Cel::Int(4)));
    }

    #[test]
    fn root_metadata_is_name_and_generate_name_only() {
        let s = json!({"type": "object"});
        let obj = json!({"metadata": {"name": "a", "namespace": "ns", "uid": "u"}});
        let Cel::Map(m) = to_cel(&s, &obj, true) else {
            panic!("map")
        };
        let Some(Cel::Map(meta)) = m.map.get(&Key::String(Arc::new("metadata".into()))) else {
            panic!("metadata")
        };
        assert_eq!(meta.map.len(), 1);
    }
}
