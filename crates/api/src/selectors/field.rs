//! Field selectors (`?fieldSelector=`): `f=v`, `f==v`, `f!=v`, comma-separated and
//! ANDed, values escaped with backslashes, as upstream's `fields.ParseSelector`.

use std::fmt;

use super::{Result, SelectorError};
use crate::fields::Fields;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOperator {
    /// `=` or `==`
    Equals,
    /// `!=`
    NotEquals,
}

/// One `field op value` term, the value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    fn matches(&self, fields: &[(String, String)]) -> bool {
        // Upstream's `fields.Set.Get`: a field the object lacks reads as "".
        let actual = fields
            .iter()
            .find(|(k, _)| *k == self.field)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

/// A parsed field selector; terms sorted as upstream sorts them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector of one `field=value` term.
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        Self {
            terms: vec![FieldRequirement {
                field: field.to_string(),
                operator: FieldOperator::Equals,
                value: value.to_string(),
            }],
        }
    }

    pub fn parse(selector: &str) -> Result<Self> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            terms.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(Self { terms })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object with these selectable fields (`Fields::fields`) matches.
    pub fn matches(&self, fields: &[(String, String)]) -> bool {
        self.terms.iter().all(|t| t.matches(fields))
    }

    /// The value the selector demands for `field` (`field=v`), upstream's
    /// `RequiresExactMatch`, for index lookups such as `spec.nodeName=n1`.
    pub fn single_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// Runs every field name through the resource's field label conversion, as the
    /// API server does before listing: unsupported fields fail with upstream's
    /// message, aliases (`spec.host`) become their canonical names.
    pub fn convert(&self, fields: &dyn Fields) -> Result<Self> {
        let terms = self
            .terms
            .iter()
            .map(|t| {
                let field = fields
                    .convert_label(&t.field)
                    .map_err(SelectorError::UnsupportedField)?;
                Ok(FieldRequirement {
                    field,
                    operator: t.operator,
                    value: t.value.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { terms })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match t.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", t.field, escape_value(&t.value))?;
        }
        Ok(())
    }
}

/// Upstream's `fields.EscapeValue`: backslash before `\`, `,` and `=`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at commas that are not escaped; the escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The field, the operator and the raw value, split at the first operator; `!=` and
/// `==` are tried before `=` at each position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, value));
            }
        }
    }
    None
}

/// Upstream's `fields.UnescapeValue`, with its error messages.
fn unescape_value(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Go prints the rune with %v, i.e. as its number.
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_matches() {
        let obj = set(&[("metadata.name", "web"), ("spec.nodeName", "n1")]);
        // (selector, matches obj)
        let cases = [
            ("", true),
            ("metadata.name=web", true),
            ("metadata.name==web", true),
            ("metadata.name!=web", false),
            ("metadata.name=web,spec.nodeName=n1", true),
            ("metadata.name=web,spec.nodeName=n2", false),
            ("spec.nodeName=", false),
            ("status.phase=", true),
            ("status.phase!=Running", true),
            (",metadata.name=web,", true),
        ];
        for (sel, want) in cases {
            let s = FieldSelector::parse(sel).unwrap();
            assert_eq!(s.matches(&obj), want, "{sel}");
        }
    }

    #[test]
    fn escaping_round_trips() {
        let s = FieldSelector::parse(r"a=x\,y\=z\\,b!=c").unwrap();
        assert_eq!(s.requirements()[0].value, r"x,y=z\");
        assert_eq!(s.to_string(), r"a=x\,y\=z\\,b!=c");
        assert_eq!(escape_value(r"a,b=c\"), r"a\,b\=c\\");
        // Terms sort by their raw text.
        assert_eq!(
            FieldSelector::parse("z=1,a=2").unwrap().to_string(),
            "a=2,z=1"
        );
    }

    #[test]
    fn errors_are_upstreams() {
        let cases = [
            ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
            ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
            (
                r"a=b\x",
                r"invalid field selector: invalid escape sequence: \x",
            ),
            (
                r"a=b\",
                r"invalid field selector: invalid escape sequence: \",
            ),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (sel, want) in cases {
            assert_eq!(
                FieldSelector::parse(sel).unwrap_err().to_string(),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn exact_match_for_indexes() {
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert_eq!(s.single_value("spec.nodeName"), Some("n1"));
        assert_eq!(s.single_value("status.phase"), None);
        assert_eq!(s.single_value("metadata.name"), None);
    }
}
