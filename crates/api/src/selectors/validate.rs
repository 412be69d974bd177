//! Label key and value checks, with the wording of upstream's `IsQualifiedName` and
//! `IsValidLabelValue` (apimachinery util/validation, as of 1.33), and the
//! `field.Error` rendering the selector errors use.

use super::go_quote;

const NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
pub(crate) const SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
pub(crate) const SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const NAME_MAX: usize = 63;
const SUBDOMAIN_MAX: usize = 253;

/// Upstream's `RegexError`, including its double space before each " or ".
pub(crate) fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

pub(crate) fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
pub(crate) fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() => b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')),
        _ => false,
    }
}

pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                (f.is_ascii_lowercase() || f.is_ascii_digit())
                    && (l.is_ascii_lowercase() || l.is_ascii_digit())
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            }
            _ => false,
        }
    })
}

/// Upstream's `IsQualifiedName`: the messages for an invalid label key, empty if valid.
pub(crate) fn label_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > SUBDOMAIN_MAX {
                    errs.push(format!("prefix part {}", max_len_error(SUBDOMAIN_MAX)));
                }
                if !is_dns1123_subdomain(prefix) {
                    let e = regex_error(SUBDOMAIN_ERR, SUBDOMAIN_FMT, &["example.com"]);
                    errs.push(format!("prefix part {e}"));
                }
            }
            *name
        }
        _ => {
            let e = regex_error(NAME_ERR, NAME_FMT, &["MyName", "my.name", "123-abc"]);
            errs.push(format!(
                "a qualified name {e} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > NAME_MAX {
        errs.push(format!("name part {}", max_len_error(NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        let e = regex_error(NAME_ERR, NAME_FMT, &["MyName", "my.name", "123-abc"]);
        errs.push(format!("name part {e}"));
    }
    errs
}

/// Upstream's `IsValidLabelValue`: the messages for an invalid label value.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > NAME_MAX {
        errs.push(max_len_error(NAME_MAX));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            VALUE_ERR,
            VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A bad value as `field.Error` renders it: Go's `%q` for a string, `%#v` for a list.
pub(crate) enum BadValue<'a> {
    Str(&'a str),
    List(&'a [String]),
}

impl BadValue<'_> {
    fn render(&self) -> String {
        match self {
            BadValue::Str(s) => go_quote(s),
            // The values reach upstream's check as a nil slice when empty.
            BadValue::List([]) => "[]string(nil)".to_string(),
            BadValue::List(l) => {
                let items: Vec<String> = l.iter().map(|s| go_quote(s)).collect();
                format!("[]string{{{}}}", items.join(", "))
            }
        }
    }
}

/// `<path>: Invalid value: <value>: <detail>`, upstream's `field.Invalid(...).Error()`.
pub(crate) fn invalid(path: &str, value: BadValue<'_>, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", value.render())
}

/// Upstream's aggregate error text: one error as is, several as `[a, b]`, with
/// duplicates dropped.
pub(crate) fn aggregate(errs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        for ok in ["a", "app.kubernetes.io/name", "A_b-c.d", "x/y", "0"] {
            assert!(label_key_errors(ok).is_empty(), "{ok}");
        }
        assert_eq!(
            label_key_errors("a@b"),
            [
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(label_key_errors("/a"), ["prefix part must be non-empty"]);
        assert_eq!(label_key_errors("a/b/c").len(), 1);
        assert!(
            label_key_errors("Example.com/a")[0].starts_with("prefix part a lowercase RFC 1123")
        );
        let long = "a".repeat(64);
        assert_eq!(
            label_key_errors(&long),
            ["name part must be no more than 63 characters"]
        );
    }

    #[test]
    fn label_values() {
        for ok in ["", "a", "my_value", "12345", "a.b-c"] {
            assert!(label_value_errors(ok).is_empty(), "{ok}");
        }
        assert_eq!(label_value_errors("-a").len(), 1);
        assert_eq!(label_value_errors(&"-".repeat(64)).len(), 2);
    }

    #[test]
    fn renders_field_errors() {
        assert_eq!(
            invalid("values", BadValue::List(&[]), "x"),
            "values: Invalid value: []string(nil): x"
        );
        let l = ["a".to_string(), "b".to_string()];
        assert_eq!(
            invalid("values", BadValue::List(&l), "x"),
            r#"values: Invalid value: []string{"a", "b"}: x"#
        );
        assert_eq!(aggregate(vec!["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(vec!["a".into(), "b".into()]), "[a, b]");
    }
}
