//! A custom object's JSON as the CEL value a rule sees, typed by its schema as
//! upstream types it: `integer` as int (never uint), `number` as double even when
//! written without a fraction, objects (with properties or additionalProperties) as
//! maps keyed by field name, int-or-string and preserve-unknown-fields values by what
//! the JSON holds, strings of format `date-time` and `date` as timestamps,
//! `duration` as durations and `byte` as the bytes they encode. At the root of a resource (and of an embedded one) only
//! `apiVersion`, `kind` and `metadata.name` / `metadata.generateName` are visible.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value as Cel;
use cel::common::types::CelString;
use cel::common::value::CowVal;
use cel::objects::{Key, Map};
use serde_json::Value;

use super::functions::ENV;

use super::super::schema::{embedded, field_schema, items, ty};

/// `v` under `schema`; `root` marks the object itself.
pub fn to_cel(schema: &Value, v: &Value, root: bool) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => number(schema, n),
        Value::String(s) => {
            formatted(schema, s).unwrap_or_else(|| Cel::String(Arc::new(s.clone())))
        }
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

/// A string as its format types it upstream; `None` for a plain string, or one
/// that does not parse (it stays a string).
fn formatted(schema: &Value, s: &str) -> Option<Cel> {
    let (function, text) = match schema.get("format")?.as_str()? {
        // In UTC, as upstream holds it: the crate's accessors (`getHours()`)
        // read the timestamp's own offset.
        "date-time" => ("timestamp", s.parse::<jiff::Timestamp>().ok()?.to_string()),
        "date" => ("timestamp", format!("{s}T00:00:00Z")),
        "duration" => ("duration", s.to_string()),
        "byte" => return base64(s).map(|b| Cel::Bytes(Arc::new(b))),
        _ => return None,
    };
    // The standard library's own conversion, as `timestamp(s)` in a rule.
    let arg = CowVal::owned(CelString::from(text));
    let convert = ENV.find_overload(function, std::slice::from_ref(&arg))?;
    let out = convert(vec![arg]).ok()?;
    Cel::try_from(out.as_ref()).ok()
}

/// Standard, padded base64 (Go's `StdEncoding`).
fn base64(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let body = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for c in body.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
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
    fn formatted_strings_are_typed_as_upstream_types_them() {
        let s = json!({"type": "object", "properties": {
            "t": {"type": "string", "format": "date-time"},
            "d": {"type": "string", "format": "date"},
            "p": {"type": "string", "format": "duration"},
            "b": {"type": "string", "format": "byte"},
            "bad": {"type": "string", "format": "date-time"},
        }});
        let obj = json!({"t": "2024-01-02T03:04:05Z", "d": "2024-01-02", "p": "1h30m", "b": "aGVsbG8=", "bad": "x"});
        let Cel::Map(m) = to_cel(&s, &obj, false) else {
            panic!("map")
        };
        let get = |k: &str| m.map.get(&Key::String(Arc::new(k.into()))).cloned();
        assert!(matches!(get("t"), Some(Cel::Timestamp(_))));
        assert!(matches!(get("d"), Some(Cel::Timestamp(_))));
        assert!(matches!(get("p"), Some(Cel::Duration(_))));
        assert_eq!(get("b"), Some(Cel::Bytes(Arc::new(b"hello".to_vec()))));
        assert_eq!(get("bad"), Some(Cel::String(Arc::new("x".into()))));
        assert_eq!(base64("aGVsbA=="), Some(b"hell".to_vec()));
        assert_eq!(base64("aGVsbA="), None);
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
