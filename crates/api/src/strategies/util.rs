//! JSON helpers the strategies share: defaulting a field, walking lists, and
//! rendering values the way Go's `%#v` shows them in upstream's messages.

use serde_json::{Map, Value, json};

use crate::selectors::go_quote;
use crate::validation::{FieldError, FieldErrorType};

/// True for a missing field, `null` and `""`: what upstream's defaulting treats as unset.
pub fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Sets `obj[key]` to `value` when unset. No-op when `obj` is not an object.
pub fn default_field(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut()
        && is_unset(m.get(key))
    {
        m.insert(key.to_string(), value);
    }
}

/// `obj[key]` as an object, created (or replaced when `null`) if needed. `None` when
/// `obj` is not an object or the field holds something else.
pub fn child<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = obj.as_object_mut()?;
    let v = m.entry(key).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.is_object().then_some(v)
}

/// `obj[key]` if it exists and is an object (never created).
pub fn existing<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    obj.get_mut(key).filter(|v| v.is_object())
}

/// Every element of the list at `obj[key]`.
pub fn each_mut(obj: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(list) = obj.get_mut(key).and_then(Value::as_array_mut) {
        list.iter_mut().for_each(&mut f);
    }
}

/// The elements of the list at `obj[key]` (empty when absent).
pub fn items<'a>(obj: &'a Value, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub fn str_at<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A string map (labels, selectors) as a sorted list of pairs.
pub fn string_map(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    out.sort();
    out
}

/// Go's `%#v` of a `map[string]string`: `map[string]string{"a":"b", "c":"d"}`.
pub fn go_string_map(v: Option<&Value>) -> String {
    let pairs = string_map(v);
    if v.is_none_or(Value::is_null) {
        return "map[string]string(nil)".to_string();
    }
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// Go's `%#v` of a `metav1.LabelSelector`.
pub fn go_label_selector(sel: &Value) -> String {
    let labels = match sel.get("matchLabels").filter(|v| !v.is_null()) {
        Some(m) => go_string_map(Some(m)),
        None => "map[string]string(nil)".to_string(),
    };
    let exprs = items(sel, "matchExpressions");
    let exprs = if exprs.is_empty() {
        "[]v1.LabelSelectorRequirement(nil)".to_string()
    } else {
        let list: Vec<String> = exprs
            .iter()
            .map(|e| {
                let values: Vec<String> = items(e, "values")
                    .iter()
                    .map(|v| go_quote(v.as_str().unwrap_or_default()))
                    .collect();
                let values = if values.is_empty() {
                    "[]string(nil)".to_string()
                } else {
                    format!("[]string{{{}}}", values.join(", "))
                };
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                    go_quote(str_at(e, "key")),
                    go_quote(str_at(e, "operator")),
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", list.join(", "))
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// An `Invalid value` whose bad value is already rendered (Go's `%#v` of a struct).
pub fn invalid_rendered(field: impl Into<String>, rendered: &str, detail: &str) -> FieldError {
    FieldError::new(
        FieldErrorType::Invalid,
        field,
        None,
        format!("{rendered}: {detail}"),
    )
}

/// Upstream's `ValidateImmutableField` for a plain JSON value.
pub fn immutable(new: Option<&Value>, old: Option<&Value>, field: &str) -> Option<FieldError> {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    (norm(new) != norm(old)).then(|| {
        FieldError::invalid(
            field,
            new.cloned().unwrap_or(Value::Null),
            "field is immutable",
        )
    })
}

/// `must be greater than or equal to 0` for a field that may not be negative.
pub fn non_negative(obj: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = obj.get(key).and_then(Value::as_i64)
        && n < 0
    {
        errs.push(FieldError::invalid(
            path,
            n,
            "must be greater than or equal to 0",
        ));
    }
}

/// A value in upstream's `field.NotSupported` unless it is one of `supported`; unset
/// values pass (defaulting fills them, required checks are separate).
pub fn one_of(obj: &Value, key: &str, path: &str, supported: &[&str], errs: &mut Vec<FieldError>) {
    if let Some(s) = obj.get(key).and_then(Value::as_str)
        && !s.is_empty()
        && !supported.contains(&s)
    {
        errs.push(FieldError::not_supported(path, s, supported));
    }
}

/// Standard base64 (with padding), as Go encodes `[]byte` in JSON.
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The decoded length of standard base64 text (for size limits); `None` if malformed.
pub fn base64_decoded_len(s: &str) -> Option<usize> {
    let valid = s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
    if !valid || !s.len().is_multiple_of(4) {
        return None;
    }
    let pad = s.bytes().rev().take_while(|c| *c == b'=').count();
    Some(s.len() / 4 * 3 - pad.min(2))
}

/// A map from the JSON object at `key`, empty when absent.
pub fn object_at<'a>(obj: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    obj.get(key).and_then(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_numbers() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_decoded_len("Zm8="), Some(2));
        assert_eq!(base64_decoded_len("Zm9vYmFy"), Some(6));
        assert_eq!(base64_decoded_len("!"), None);
    }

    #[test]
    fn go_rendering() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"}});
        assert_eq!(
            go_label_selector(&sel),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"a":"1", "b":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        assert_eq!(go_string_map(None), "map[string]string(nil)");
    }

    #[test]
    fn defaults_only_unset_fields() {
        let mut o = json!({"a": "", "b": "x", "c": null});
        for k in ["a", "b", "c", "d"] {
            default_field(&mut o, k, json!("d"));
        }
        assert_eq!(o, json!({"a": "d", "b": "x", "c": "d", "d": "d"}));
    }
}
