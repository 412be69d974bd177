//! Name rules (DNS-1123 label and subdomain, DNS-1035 label, path segment, config
//! keys) with upstream's wording, and the object-metadata checks every built-in type
//! shares (upstream's `ValidateObjectMeta`).

use serde_json::Value;

use crate::meta;
use crate::selectors::validate::{
    SUBDOMAIN_ERR, SUBDOMAIN_FMT, is_dns1123_subdomain, label_key_errors, label_value_errors,
    max_len_error, regex_error,
};
use crate::validation::FieldError;

const LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1035_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const LABEL_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;
/// Upstream's limit on the total size of an object's annotations.
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// How an object's `metadata.name` is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// `NameIsDNSSubdomain`: most types.
    Subdomain,
    /// `NameIsDNSLabel`: namespaces.
    Label,
    /// `NameIsDNS1035Label`: services.
    Dns1035,
    /// `ValidatePathSegmentName`: RBAC objects, HPAs.
    PathSegment,
}

fn is_label(s: &str, first_alpha: bool) -> bool {
    let b = s.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            (if first_alpha {
                f.is_ascii_lowercase()
            } else {
                ok_char(f)
            }) && ok_char(l)
                && b.iter().all(|c| ok_char(c) || *c == b'-')
        }
        _ => false,
    }
}

/// Upstream's `IsDNS1123Label`.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX {
        errs.push(max_len_error(LABEL_MAX));
    }
    if !is_label(s, false) {
        errs.push(regex_error(LABEL_ERR, LABEL_FMT, &["my-name", "123-abc"]));
    }
    errs
}

/// Upstream's `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX {
        errs.push(max_len_error(SUBDOMAIN_MAX));
    }
    if !is_dns1123_subdomain(s) {
        errs.push(regex_error(SUBDOMAIN_ERR, SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// Upstream's `IsDNS1035Label`.
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_MAX {
        errs.push(max_len_error(LABEL_MAX));
    }
    if !is_label(s, true) {
        errs.push(regex_error(
            DNS1035_ERR,
            DNS1035_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream's `IsValidPathSegmentName`.
pub fn path_segment(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s == "." || s == ".." {
        errs.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Upstream's `IsConfigMapKey` (also used for secret keys).
pub fn config_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > SUBDOMAIN_MAX {
        errs.push(max_len_error(SUBDOMAIN_MAX));
    }
    let valid = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !valid {
        errs.push(regex_error(
            CONFIG_KEY_ERR,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if s == "." {
        errs.push("must not be '.'".to_string());
    } else if s == ".." {
        errs.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

impl NameRule {
    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => dns1123_subdomain(name),
            NameRule::Label => dns1123_label(name),
            NameRule::Dns1035 => dns1035_label(name),
            NameRule::PathSegment => path_segment(name),
        }
    }
}

/// `Invalid value` errors at `path` for each message of `check(value)`.
pub fn check_at(path: &str, value: &str, msgs: Vec<String>, errs: &mut Vec<FieldError>) {
    errs.extend(
        msgs.into_iter()
            .map(|m| FieldError::invalid(path, value, m)),
    );
}

/// Upstream's `ValidateLabels` at `path` (`metadata.labels`, `spec.selector`, …).
pub fn validate_labels(labels: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        check_at(path, k, label_key_errors(k), &mut errs);
        let v = v.as_str().unwrap_or_default();
        check_at(path, v, label_value_errors(v), &mut errs);
    }
    errs
}

/// Upstream's `ValidateAnnotations`: qualified-name keys (case-insensitively) and a
/// total size limit.
pub fn validate_annotations(annotations: Option<&Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0;
    for (k, v) in map {
        check_at(path, k, label_key_errors(&k.to_lowercase()), &mut errs);
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.push(FieldError::new(
            crate::validation::FieldErrorType::TooLong,
            path,
            None,
            format!("must have at most {TOTAL_ANNOTATION_SIZE} bytes"),
        ));
    }
    errs
}

/// Upstream's `ValidateObjectMeta`: the name (required, by `rule`), labels and
/// annotations.
pub fn validate_meta(obj: &Value, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match meta::name(obj) {
        None => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => check_at("metadata.name", name, rule.check(name), &mut errs),
    }
    let m = meta::metadata(obj);
    errs.extend(validate_labels(m.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(
        m.get("annotations"),
        "metadata.annotations",
    ));
    errs
}

/// The metadata checks of a pod template (`spec.template.metadata`): labels and
/// annotations only.
pub fn validate_template_meta(template: &Value, path: &str) -> Vec<FieldError> {
    let m = template.get("metadata").unwrap_or(&Value::Null);
    let mut errs = validate_labels(m.get("labels"), &format!("{path}.metadata.labels"));
    errs.extend(validate_annotations(
        m.get("annotations"),
        &format!("{path}.metadata.annotations"),
    ));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn name_messages_are_upstreams() {
        assert!(dns1123_label("my-name").is_empty());
        assert_eq!(
            dns1123_label("My_Name"),
            [
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            dns1123_label(&"a".repeat(64)),
            ["must be no more than 63 characters"]
        );
        assert!(dns1123_subdomain("a.b-c").is_empty());
        assert_eq!(
            dns1123_subdomain("A"),
            [
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert_eq!(
            dns1035_label("1abc"),
            [
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(path_segment("a/b"), ["may not contain '/'"]);
        assert!(path_segment("system:node").is_empty());
        assert_eq!(
            config_key("a b"),
            [
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ]
        );
        assert_eq!(config_key(".."), ["must not be '..'"]);
    }

    #[test]
    fn object_meta() {
        let obj = json!({"metadata": {"name": "Web", "labels": {"a b": "x"}}});
        let errs = validate_meta(&obj, NameRule::Subdomain);
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].to_string().starts_with(
                r#"metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain"#
            )
        );
        assert!(
            errs[1]
                .to_string()
                .starts_with(r#"metadata.labels: Invalid value: "a b": name part must"#)
        );
        let errs = validate_meta(&json!({"metadata": {}}), NameRule::Label);
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }
}
