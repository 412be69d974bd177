//! Label selectors: requirements, matching, the canonical string form, and the
//! conversion from a `metav1.LabelSelector` (upstream's `LabelSelectorAsSelector`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::validate::{self, BadValue};
use super::{Result, SelectorError, go_quote};

/// A requirement's operator, as upstream's `selection.Operator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// A bare key.
    Exists,
    /// `!key`
    DoesNotExist,
    /// `>`, integer comparison.
    GreaterThan,
    /// `<`, integer comparison.
    LessThan,
}

impl Operator {
    /// Upstream's spelling, as in `found 'x', expected: in, notin, ...`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One `key op values` term of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream's `NewRequirement`: validates the key, the values and their count for
    /// the operator.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self> {
        let mut errs = Vec::new();
        let key_errs = validate::label_key_errors(key);
        if !key_errs.is_empty() {
            errs.push(validate::invalid(
                "key",
                BadValue::Str(key),
                &key_errs.join("; "),
            ));
        }
        let list = BadValue::List(&values);
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(validate::invalid(
                "values",
                list,
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(validate::invalid(
                    "values",
                    list,
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(validate::invalid(
                    "values",
                    list,
                    "values set must be empty for exists and does not exist",
                ))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(validate::invalid(
                        "values",
                        list,
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(validate::invalid(
                            &format!("values[{i}]"),
                            BadValue::Str(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = validate::label_value_errors(v);
            if !value_errs.is_empty() {
                errs.push(validate::invalid(
                    &format!("values[{i}][{key}]"),
                    BadValue::Str(v),
                    &value_errs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(SelectorError::Label(validate::aggregate(errs)));
        }
        Ok(Self {
            key: key.to_string(),
            operator,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement; `lookup` gives a label's value.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                lookup(&self.key).is_some_and(has)
            }
            Operator::NotIn | Operator::NotEquals => !lookup(&self.key).is_some_and(has),
            Operator::Exists => lookup(&self.key).is_some(),
            Operator::DoesNotExist => lookup(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = lookup(&self.key).map(str::parse::<i64>) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        // Sorted on output, as upstream normalises without changing the requirement.
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: requirements ANDed together, sorted by key.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// A null `metav1.LabelSelector`, which selects nothing.
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches everything (an empty selector string).
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches nothing (a null `metav1.LabelSelector`).
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses `?labelSelector=` syntax: `a=b,c!=d,e in (f,g),!h,i>3`.
    pub fn parse(s: &str) -> Result<Self> {
        super::label_parse::parse(s).map(Self::from_requirements)
    }

    pub(crate) fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self {
            requirements,
            nothing: false,
        }
    }

    /// Upstream's `LabelSelectorAsSelector` from a `metav1.LabelSelector` as JSON:
    /// `null` selects nothing, `{}` everything.
    pub fn from_label_selector(sel: &Value) -> Result<Self> {
        let obj = match sel {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(o) => o,
            _ => return Err(malformed("a label selector must be an object")),
        };
        let mut reqs = Vec::new();
        if let Some(labels) = non_null(obj.get("matchLabels")) {
            let labels = labels
                .as_object()
                .ok_or_else(|| malformed("matchLabels must be an object"))?;
            let mut keys: Vec<&String> = labels.keys().collect();
            keys.sort();
            for k in keys {
                let v = labels[k]
                    .as_str()
                    .ok_or_else(|| malformed("matchLabels values must be strings"))?;
                reqs.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
            }
        }
        if let Some(exprs) = non_null(obj.get("matchExpressions")) {
            let exprs = exprs
                .as_array()
                .ok_or_else(|| malformed("matchExpressions must be a list"))?;
            for e in exprs {
                let key = e["key"].as_str().unwrap_or_default();
                let op_name = e["operator"].as_str().unwrap_or_default();
                let op = match op_name {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError::Label(format!(
                            "{} is not a valid label selector operator",
                            go_quote(other)
                        )));
                    }
                };
                let values = match non_null(e.get("values")) {
                    None => Vec::new(),
                    Some(v) => v
                        .as_array()
                        .ok_or_else(|| malformed("matchExpressions values must be a list"))?
                        .iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| malformed("matchExpressions values must be strings"))?,
                };
                reqs.push(Requirement::new(key, op, values)?);
            }
        }
        Ok(Self::from_requirements(reqs))
    }

    /// From the typed `metav1.LabelSelector`; `None` selects nothing.
    pub fn from_k8s(
        sel: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    ) -> Result<Self> {
        let v = serde_json::to_value(sel).map_err(|e| malformed(&e.to_string()))?;
        Self::from_label_selector(&v)
    }

    /// Equality requirements for each pair, as upstream's `SelectorFromSet` (no
    /// validation).
    pub fn from_set<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let reqs = set
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.to_string(),
                operator: Operator::Equals,
                values: vec![v.to_string()],
            })
            .collect();
        Self::from_requirements(reqs)
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector places no restriction (matches everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether it can match nothing at all (a null `metav1.LabelSelector`).
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether `labels` (an object's `metadata.labels`) satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Like `matches`, for labels of a typed object.
    pub fn matches_map(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Matching against any label source.
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(&lookup))
    }

    /// The value a selector demands for `key` (`key=v`, `key==v`, `key in (v)`),
    /// upstream's `RequiresExactMatch`, for index lookups.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn malformed(msg: &str) -> SelectorError {
    SelectorError::Label(msg.to_string())
}

/// Upstream's `labels.FormatLabels`: `a=b,c=d` sorted by key, `<none>` when empty.
pub fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&String, &str)> = labels
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `metav1.FormatLabelSelector`: the selector's string, `<none>` when it
/// is empty (or null), `<error>` when it is invalid.
pub fn format_label_selector(sel: &Value) -> String {
    match LabelSelector::from_label_selector(sel) {
        Err(_) => "<error>".to_string(),
        Ok(s) => {
            let text = s.to_string();
            if text.is_empty() {
                "<none>".to_string()
            } else {
                text
            }
        }
    }
}
