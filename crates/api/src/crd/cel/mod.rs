//! `x-kubernetes-validations`: CEL rules in a CRD's schema. Compiled once per CRD
//! version (when its strategy is built), checked when the CRD is written (a rule that
//! does not compile makes the CRD invalid), and evaluated on every create and update
//! of its custom objects, the status subresource included.
//!
//! Evaluation is metered (`library/cost.rs`): a rule past upstream's per-call limit,
//! or the rules of one object past upstream's runtime budget, stop validation with
//! upstream's errors.
//!
//! When a CRD is written, a rule whose estimated cost is past upstream's limit is
//! refused (`estimate.rs`).
//!
//! Differences from upstream: the estimate is a lower bound of cel-go's, with no
//! CRD-wide total, and the runtime cost an approximation of cel-go's
//! (`library/cost.rs`); the static
//! check is lighter than cel-go's type checker (`check.rs`); `allOf` rules are not
//! evaluated; the library lacks a few functions (`functions.rs`).

mod check;
mod compile;
#[cfg(test)]
mod cost_tests;
mod estimate;
mod eval;
mod functions;
mod library;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeMap;

use serde_json::Value;

pub use compile::resolve_field_path;
pub use eval::{Budget, Node};

use crate::crd::schema::{additional_schema, embedded, items, prop_path, properties};
use crate::validation::FieldError;

/// The compiled rules of a version's `openAPIV3Schema`; `None` when it has none.
pub fn compile_schema(schema: &Value) -> Option<Node> {
    node(schema, true)
}

fn node(s: &Value, root: bool) -> Option<Node> {
    let rules: Vec<_> = entries(s)
        .iter()
        .map(|e| compile::compile(s, root, e).0)
        .collect();
    let properties: BTreeMap<String, Node> = properties(s)
        .into_iter()
        .flatten()
        .filter_map(|(k, p)| Some((k.clone(), node(p, embedded(p))?)))
        .collect();
    let additional = additional_schema(s)
        .and_then(|a| node(a, embedded(a)))
        .map(Box::new);
    let items = items(s).and_then(|i| node(i, embedded(i))).map(Box::new);
    if rules.is_empty() && properties.is_empty() && additional.is_none() && items.is_none() {
        return None;
    }
    Some(Node {
        schema: without_children(s),
        root,
        rules,
        properties,
        additional,
        items,
    })
}

/// The node's schema as rules need it; nested `x-kubernetes-validations` are not.
fn without_children(s: &Value) -> Value {
    let mut out = s.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("x-kubernetes-validations");
    }
    out
}

fn entries(s: &Value) -> Vec<Value> {
    s.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Validates an object (`old`: its stored version, on update) against the rules.
pub fn validate(rules: &Node, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    rules.validate(obj, old, "", &mut errs, &mut Budget::default());
    errs
}

/// The errors of the `x-kubernetes-validations` in a CRD version's schema found at
/// `path` (`spec.versions[0].schema.openAPIV3Schema`), as upstream's CRD validation
/// reports them.
pub fn validate_rules(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(schema, true, path, &mut errs);
    errs
}

fn walk(s: &Value, root: bool, path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in entries(s).iter().enumerate() {
        let at = format!("{path}.x-kubernetes-validations[{i}]");
        let before = errs.len();
        entry_fields(s, e, &at, errs);
        if errs.len() > before {
            continue;
        }
        let (_, found) = compile::compile(s, root, e);
        let shown = go_rule(e);
        if let Some(d) = found.rule {
            errs.push(crate::strategies::util::invalid_rendered(
                format!("{at}.rule"),
                &shown,
                &d,
            ));
        }
        if let Some(d) = found.message_expression {
            let field = format!("{at}.messageExpression");
            errs.push(crate::strategies::util::invalid_rendered(field, &shown, &d));
        }
        if let Some(m) = found.rule_cost {
            errs.push(FieldError::forbidden(format!("{at}.rule"), m));
        }
        if let Some(m) = found.message_expression_cost {
            errs.push(FieldError::forbidden(format!("{at}.messageExpression"), m));
        }
        if found.optional_old_self {
            errs.push(FieldError::invalid(
                format!("{at}.optionalOldSelf"),
                e["optionalOldSelf"].clone(),
                "may not be set if oldSelf is not used in rule",
            ));
        }
    }
    for (k, p) in properties(s).into_iter().flatten() {
        walk(p, embedded(p), &prop_path(path, k), errs);
    }
    if let Some(i) = items(s) {
        walk(i, embedded(i), &format!("{path}.items"), errs);
    }
    if let Some(a) = additional_schema(s) {
        walk(
            a,
            embedded(a),
            &format!("{path}.additionalProperties"),
            errs,
        );
    }
}

const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// The checks of one entry's fields before its rule is compiled.
fn entry_fields(s: &Value, e: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let raw = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
    let (rule, msg) = (raw("rule").trim(), raw("message"));
    let newline = |t: &str| t.contains(['\n', '\r']);
    if rule.is_empty() {
        errs.push(FieldError::required(
            format!("{at}.rule"),
            "rule is not specified",
        ));
    } else if !msg.is_empty() && msg.trim().is_empty() {
        errs.push(FieldError::invalid(
            format!("{at}.message"),
            msg,
            "message must be non-empty if specified",
        ));
    } else if newline(msg.trim()) {
        errs.push(FieldError::invalid(
            format!("{at}.message"),
            msg,
            "message must not contain line breaks",
        ));
    } else if newline(rule) && msg.trim().is_empty() {
        errs.push(FieldError::required(
            format!("{at}.message"),
            "message must be specified if rule contains line breaks",
        ));
    }
    let msg_expr = raw("messageExpression");
    if !msg_expr.is_empty() && msg_expr.trim().is_empty() {
        errs.push(FieldError::required(
            format!("{at}.messageExpression"),
            "messageExpression must be non-empty if specified",
        ));
    }
    if let Some(r) = e.get("reason").and_then(Value::as_str)
        && !REASONS.contains(&r)
    {
        errs.push(FieldError::not_supported(
            format!("{at}.reason"),
            r,
            &REASONS,
        ));
    }
    let fp = raw("fieldPath");
    if !fp.is_empty() {
        if fp.trim().is_empty() {
            errs.push(FieldError::invalid(
                format!("{at}.fieldPath"),
                fp,
                "fieldPath must be non-empty if specified",
            ));
        } else if newline(fp) {
            errs.push(FieldError::invalid(
                format!("{at}.fieldPath"),
                fp,
                "fieldPath must not contain line breaks",
            ));
        } else if resolve_field_path(s, fp).is_err() {
            errs.push(FieldError::invalid(
                format!("{at}.fieldPath"),
                fp,
                "fieldPath must be a valid path",
            ));
        }
    }
}

/// Go's `%#v` of the entry, as upstream shows the bad value of a rule that does not
/// compile.
fn go_rule(e: &Value) -> String {
    let s = |k: &str| format!("{:?}", e.get(k).and_then(Value::as_str).unwrap_or_default());
    let reason = match e.get("reason").and_then(Value::as_str) {
        Some(r) => format!("&\"{r}\""),
        None => "(*apiextensions.FieldValueErrorReason)(nil)".into(),
    };
    let optional = match e.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(b) => format!("&{b}"),
        None => "(*bool)(nil)".into(),
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        s("fieldPath")
    )
}
