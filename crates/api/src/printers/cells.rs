//! Reading cell values out of objects held as JSON: absent fields read as Go's zero
//! values, the way upstream's printers see the decoded (and defaulted) structs.

use jiff::Timestamp;
use serde_json::Value;

use super::duration::translate_timestamp_since;

/// The string at `v`, "" when absent.
pub(crate) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The integer at `v`, 0 when absent.
pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .unwrap_or(0)
}

/// The list at `v`, empty when absent.
pub(crate) fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The number of entries of a list or map, 0 when absent.
pub(crate) fn count(v: &Value) -> i64 {
    match v {
        Value::Array(a) => a.len() as i64,
        Value::Object(o) => o.len() as i64,
        _ => 0,
    }
}

/// `s`, or `<none>` when it is empty.
pub(crate) fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

pub(crate) fn name(obj: &Value) -> Value {
    Value::from(s(&obj["metadata"]["name"]))
}

/// The AGE cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, now: Timestamp) -> Value {
    since(&obj["metadata"]["creationTimestamp"], now)
}

/// Time since the timestamp at `v`, `<unknown>` when absent.
pub(crate) fn since(v: &Value, now: Timestamp) -> Value {
    Value::from(translate_timestamp_since(v.as_str(), now))
}

/// `replicas` of a spec, defaulted to 1 as decoding with defaults gives upstream.
pub(crate) fn replicas(spec: &Value) -> i64 {
    spec["replicas"].as_i64().unwrap_or(1)
}

/// Upstream's `layoutContainerCells`: container names and images, comma-joined.
pub(crate) fn containers(pod_spec: &Value) -> (Value, Value) {
    let list = arr(&pod_spec["containers"]);
    let names: Vec<&str> = list.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| s(&c["image"])).collect();
    (names.join(",").into(), images.join(",").into())
}

/// An IntOrString as Go's `String()` prints it.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A resource.Quantity as stored (the API keeps its canonical form); "0" when absent.
pub(crate) fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// `items` with at most `max` shown, then ` + N more...`; `<unset>` when empty.
/// Upstream's `listWithMoreString`.
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "<unset>".to_string();
    }
    let shown = items[..items.len().min(max)].join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else {
        shown
    }
}

/// The owner reference with `controller: true`, upstream's `GetControllerOf`.
pub(crate) fn controller_of(obj: &Value) -> Option<&Value> {
    arr(&obj["metadata"]["ownerReferences"])
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helpers() {
        assert_eq!(list_with_more(&[], 3), "<unset>");
        let l: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(list_with_more(&l, 3), "a,b,c + 1 more...");
        assert_eq!(list_with_more(&l[..2], 3), "a,b");
        assert_eq!(int_or_string(&json!("50%")), "50%");
        assert_eq!(int_or_string(&json!(2)), "2");
        assert_eq!(quantity(&Value::Null), "0");
        let spec =
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]});
        assert_eq!(containers(&spec), (json!("a,b"), json!("x,y")));
        assert_eq!(replicas(&json!({})), 1);
        assert_eq!(or_none(""), "<none>");
    }
}
