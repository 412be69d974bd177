//! ConfigMaps and Secrets: key rules, the 1 MiB limit, `immutable`, secret types and
//! the `stringData` merge upstream's conversion does.

use serde_json::{Value, json};

use crate::strategies::names::{NameRule, check_at, config_key, validate_meta};
use crate::strategies::util::{base64_decoded_len, base64_encode, immutable, object_at, str_at};
use crate::strategy::Strategy;
use crate::validation::FieldError;

/// Upstream's `MaxSecretSize`, also the configmap limit.
const MAX_SIZE: usize = 1024 * 1024;

pub struct ConfigMaps;
pub struct Secrets;

/// Key checks over `data` and `binaryData`-like maps; returns the total size.
fn check_keys(
    obj: &Value,
    field: &str,
    size_of: impl Fn(&Value) -> usize,
    errs: &mut Vec<FieldError>,
) -> usize {
    let mut total = 0;
    for (k, v) in object_at(obj, field).into_iter().flatten() {
        check_at(&format!("{field}[{k}]"), k, config_key(k), errs);
        total += size_of(v);
    }
    total
}

/// `immutable: true` freezes the contents and the flag itself.
fn validate_immutable(new: &Value, old: &Value, fields: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old["immutable"] != true {
        return errs;
    }
    if new["immutable"] != true {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let norm = |v: &Value| match v.get(*f) {
            None | Some(Value::Null) => json!({}),
            Some(x) => x.clone(),
        };
        if norm(new) != norm(old) {
            errs.push(FieldError::forbidden(
                *f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

impl Strategy for ConfigMaps {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let str_len = |v: &Value| v.as_str().map_or(0, str::len);
        let mut total = check_keys(obj, "data", str_len, &mut errs);
        let bin_len = |v: &Value| v.as_str().and_then(base64_decoded_len).unwrap_or(0);
        total += check_keys(obj, "binaryData", bin_len, &mut errs);
        let data = object_at(obj, "data");
        for k in object_at(obj, "binaryData")
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if data.is_some_and(|d| d.contains_key(k)) {
                errs.push(FieldError::invalid(
                    format!("binaryData[{k}]"),
                    k.as_str(),
                    "duplicate of key present in data",
                ));
            }
        }
        if total > MAX_SIZE {
            errs.push(FieldError::too_long("", MAX_SIZE));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(validate_immutable(new, old, &["data", "binaryData"]));
        errs
    }
}

/// Keys each secret type must carry in `data`.
fn required_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    }
}

impl Strategy for Secrets {
    fn default(&self, obj: &mut Value) {
        let Some(o) = obj.as_object_mut() else { return };
        if o.get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            o.insert("type".into(), json!("Opaque"));
        }
        // Upstream's v1 → internal conversion: stringData wins over data, then goes.
        if let Some(Value::Object(strings)) = o.remove("stringData") {
            let data = o.entry("data").or_insert_with(|| json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            for (k, v) in strings {
                let text = v.as_str().unwrap_or_default();
                data[k.as_str()] = json!(base64_encode(text.as_bytes()));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let size = |v: &Value| v.as_str().and_then(base64_decoded_len).unwrap_or(0);
        let total = check_keys(obj, "data", size, &mut errs);
        if total > MAX_SIZE {
            errs.push(FieldError::too_long("data", MAX_SIZE));
        }
        let kind = str_at(obj, "type");
        let data = object_at(obj, "data");
        for key in required_keys(kind) {
            if !data.is_some_and(|d| d.contains_key(*key)) {
                errs.push(FieldError::required(format!("data[{key}]"), ""));
            }
        }
        match kind {
            "kubernetes.io/service-account-token" => {
                let named = crate::meta::annotations(obj)
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if !named {
                    errs.push(FieldError::required(
                        "metadata.annotations[kubernetes.io/service-account.name]",
                        "",
                    ));
                }
            }
            "kubernetes.io/basic-auth" => {
                let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
                if !has("username") && !has("password") {
                    errs.push(FieldError::required(
                        "data[username]",
                        "either username or password is required",
                    ));
                }
            }
            _ => {}
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable(new.get("type"), old.get("type"), "type"));
        errs.extend(validate_immutable(new, old, &["data"]));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn config_keys() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a b": "x", "ok": "y"}});
        assert_eq!(
            msgs(ConfigMaps.validate(&cm)),
            [
                r#"data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#
            ]
        );
        let big = json!({"metadata": {"name": "c"}, "data": {"a": "x".repeat(MAX_SIZE + 1)}});
        assert_eq!(
            msgs(ConfigMaps.validate(&big)),
            [": Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn immutable_configmaps() {
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": true});
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        assert_eq!(
            msgs(ConfigMaps.validate_update(&new, &old)),
            ["data: Forbidden: field is immutable when `immutable` is set"]
        );
        assert!(ConfigMaps.validate_update(&old, &old).is_empty());
    }

    #[test]
    fn secrets() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"},
            "data": {"user": "eA==", "x": "eA=="}});
        Secrets.default(&mut s);
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"user": "YWRtaW4=", "x": "eA=="}));
        assert!(s.get("stringData").is_none());
        let tls = json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
        assert_eq!(
            msgs(Secrets.validate(&tls)),
            ["data[tls.key]: Required value"]
        );
        let mut changed = s.clone();
        changed["type"] = json!("kubernetes.io/tls");
        assert!(msgs(Secrets.validate_update(&changed, &s)).contains(
            &r#"type: Invalid value: "kubernetes.io/tls": field is immutable"#.to_string()
        ));
    }
}
