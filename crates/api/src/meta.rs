//! Reading and writing `metadata` of objects held as JSON values.

use jiff::Timestamp;
use serde_json::{Map, Value};

pub fn metadata(obj: &Value) -> &Value {
    &obj["metadata"]
}

/// `metadata`, created when absent. Panics only if `obj` is not a JSON object, which
/// the decoder rules out before any strategy runs.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let root = obj.as_object_mut().expect("objects are JSON objects");
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|s| !s.is_empty())
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|s| !s.is_empty())
}

pub fn generate_name(obj: &Value) -> Option<&str> {
    meta_str(obj, "generateName").filter(|s| !s.is_empty())
}

pub fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid").filter(|s| !s.is_empty())
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty())
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "deletionTimestamp")
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

pub fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn generation(obj: &Value) -> i64 {
    obj.get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn set_str(obj: &mut Value, field: &str, value: &str) {
    metadata_mut(obj).insert(field.to_string(), Value::String(value.to_string()));
}

pub fn remove(obj: &mut Value, field: &str) {
    metadata_mut(obj).remove(field);
}

/// Removes `status` entirely; strategies that reset status on create use it.
pub fn clear_status(obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        o.remove("status");
    }
}

/// A metav1.Time: RFC 3339 in UTC with whole seconds, as upstream serialises it.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The current time as a metav1.Time. Every created or updated object is stamped, so
/// each thread keeps the last second it formatted.
pub fn now() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const {
            std::cell::RefCell::new((i64::MIN, String::new()))
        };
    }
    let t = Timestamp::now();
    LAST.with_borrow_mut(|(second, text)| {
        if *second != t.as_second() {
            *second = t.as_second();
            *text = format_time(t);
        }
        text.clone()
    })
}

/// Parses a metav1.Time or MicroTime string.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_metadata() {
        let mut o = json!({"kind": "Pod"});
        assert_eq!(name(&o), None);
        set_str(&mut o, "name", "web");
        assert_eq!(name(&o), Some("web"));
        assert_eq!(generation(&o), 0);
        let t = parse_time("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(format_time(t), "2024-05-01T10:00:00Z");
    }

    #[test]
    fn now_is_the_current_second() {
        let before = Timestamp::now().as_second();
        let stamped = parse_time(&now()).unwrap().as_second();
        let again = parse_time(&now()).unwrap().as_second();
        let after = Timestamp::now().as_second();
        assert!(before <= stamped && stamped <= again && again <= after);
    }
}
