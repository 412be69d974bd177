//! Label and field selectors: parsing (`?labelSelector=`, `?fieldSelector=`,
//! `metav1.LabelSelector` objects), matching, and the canonical string form, with
//! upstream's error messages, which the API server returns in 400 responses.

mod field;
mod label;
mod label_parse;
#[cfg(test)]
mod label_tests;
pub(crate) mod validate;

pub use field::{FieldOperator, FieldRequirement, FieldSelector, escape_value};
pub use label::{LabelSelector, Operator, Requirement, format_label_selector, format_labels};

/// A selector that does not parse or does not apply. The message is upstream's,
/// ready for a `Status.message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string or `metav1.LabelSelector` that is not valid.
    #[error("{0}")]
    Label(String),
    /// A field selector string that does not parse.
    #[error("{0}")]
    Field(String),
    /// A field selector naming a field the resource does not support.
    #[error("{0}")]
    UnsupportedField(String),
}

pub type Result<T, E = SelectorError> = std::result::Result<T, E>;

/// Go's `%q` for a string: double quotes, backslash escapes for quotes, backslashes
/// and control characters; printable text as is.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
    }
}
