//! Evaluating the compiled rules of a schema against a custom object, node by node,
//! as upstream's CEL validator does: each rule runs with `self` bound to its node's
//! value (for every element of the lists and maps above it), transition rules only
//! where the old value can be correlated (map keys, object fields, items of
//! `x-kubernetes-list-type: map` lists by their keys), and failures become field
//! errors at the node's path (or the rule's `fieldPath`).

use std::collections::BTreeMap;

use cel::common::ast::IdedExpr;
use cel::common::types::CelOptional;
use cel::common::value::Val;
use cel::{Context, ExecutionError, Value as Cel};
use serde_json::Value;

use super::compile::Rule;
use super::functions::ENV;
use super::library::VERBATIM;
use super::library::cost::{EXCEEDED, PER_CALL_LIMIT, RUNTIME_BUDGET, metered};
use super::values::to_cel;
use crate::crd::schema::{child, index, ty};
use crate::validation::FieldError;

/// What the rules of one object may still spend: upstream's runtime budget.
pub struct Budget {
    left: u64,
    /// Spent, or a rule exceeded its own limit: no further rule runs.
    stopped: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            left: RUNTIME_BUDGET,
            stopped: false,
        }
    }
}

/// The rules of one schema node and of the nodes below it that have any.
pub struct Node {
    pub(super) schema: Value,
    pub(super) root: bool,
    pub(super) rules: Vec<Rule>,
    pub(super) properties: BTreeMap<String, Node>,
    pub(super) additional: Option<Box<Node>>,
    pub(super) items: Option<Box<Node>>,
}

impl Node {
    /// The errors of `v` (with `old`, its correlated old value, on update) at `path`.
    pub fn validate(
        &self,
        v: &Value,
        old: Option<&Value>,
        path: &str,
        errs: &mut Vec<FieldError>,
        budget: &mut Budget,
    ) {
        if v.is_null() || budget.stopped {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        if !self.rules.is_empty() {
            self.run_rules(v, old, path, errs, budget);
        }
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    let old_x = old.and_then(|o| o.get(k));
                    if let Some(p) = self.properties.get(k) {
                        p.validate(x, old_x, &child(path, k), errs, budget);
                    } else if let Some(a) = &self.additional {
                        a.validate(x, old_x, &format!("{path}[{k}]"), errs, budget);
                    }
                }
            }
            Value::Array(list) => {
                let Some(item) = &self.items else { return };
                let keys = map_keys(&self.schema);
                for (i, x) in list.iter().enumerate() {
                    let old_x = keys.as_ref().and_then(|k| correlate(k, x, old));
                    item.validate(x, old_x, &index(path, i), errs, budget);
                }
            }
            _ => {}
        }
    }

    fn run_rules(
        &self,
        v: &Value,
        old: Option<&Value>,
        path: &str,
        errs: &mut Vec<FieldError>,
        budget: &mut Budget,
    ) {
        let this = to_cel(&self.schema, v, self.root);
        let old_cel = old.map(|o| to_cel(&self.schema, o, self.root));
        let schema_type = ty(&self.schema);
        let mut contexts: [Option<Option<Context>>; 2] = [None, None];
        for rule in &self.rules {
            let program = match &rule.program {
                Ok(p) => p,
                Err(e) => {
                    let detail = format!("rule compile error: {e}");
                    errs.push(FieldError::invalid(path, schema_type, detail));
                    continue;
                }
            };
            if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
                continue;
            }
            // One activation per kind of oldSelf, shared by the node's rules: binding a
            // value copies it.
            let slot = usize::from(rule.optional_old_self);
            if contexts[slot].is_none() {
                contexts[slot] = Some(context(&this, old_cel.as_ref(), rule.optional_old_self));
            }
            let Some(Some(ctx)) = &contexts[slot] else {
                continue;
            };
            let shown = rule_string(rule);
            let result = match budget.run(ctx, program) {
                Ok(r) => r,
                Err(over) => {
                    let detail = match over {
                        Over::Limit => format!(
                            "'{EXCEEDED}': no further validation rules will be run due to call cost exceeds limit for rule: {shown}"
                        ),
                        Over::Budget => OUT_OF_BUDGET.to_string(),
                    };
                    errs.push(FieldError::invalid(path, schema_type, detail));
                    return;
                }
            };
            match result {
                Ok(Cel::Bool(true)) => continue,
                Ok(_) => {}
                Err(e) => {
                    let detail = eval_error(&e, shown);
                    errs.push(FieldError::invalid(path, schema_type, detail));
                    continue;
                }
            }
            // Ratcheting: a rule that does not read oldSelf does not block an
            // update that leaves its value as it was (upstream warns instead).
            if !rule.uses_old_self && old == Some(v) {
                continue;
            }
            let at = match &rule.field_path {
                Some(f) => child(path, f),
                None => path.to_string(),
            };
            let detail = match &rule.message_expression {
                Some((src, m)) => match budget.run(ctx, m) {
                    Ok(r) => message(r),
                    Err(over) => {
                        let detail = match over {
                            Over::Limit => format!(
                                "no further validation rules will be run due to call cost exceeds limit for messageExpression: {src:?}"
                            ),
                            Over::Budget => MESSAGE_OUT_OF_BUDGET.to_string(),
                        };
                        errs.push(FieldError::invalid(path, schema_type, detail));
                        return;
                    }
                },
                None => None,
            };
            let detail = detail.unwrap_or_else(|| default_message(rule));
            errs.push(for_reason(rule.reason.as_deref(), at, schema_type, detail));
        }
    }
}

const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";
const MESSAGE_OUT_OF_BUDGET: &str = "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run";

/// Why an evaluation was stopped.
enum Over {
    /// The rule's own limit (upstream's `PerCallLimit`).
    Limit,
    /// What was left of the object's budget.
    Budget,
}

impl Budget {
    /// Evaluates `expr` within the per-rule limit and what is left of the
    /// budget; when either runs out, nothing more runs.
    fn run(&mut self, ctx: &Context, expr: &IdedExpr) -> Result<Result<Cel, ExecutionError>, Over> {
        let (result, spent) = metered(PER_CALL_LIMIT, || ctx.resolve(expr));
        if spent.exhausted {
            self.stopped = true;
            return Err(Over::Limit);
        }
        if spent.cost > self.left {
            self.stopped = true;
            return Err(Over::Budget);
        }
        self.left -= spent.cost;
        Ok(result)
    }
}

/// upstream's `ruleErrorString`: the rule's message, or the rule.
fn rule_string(rule: &Rule) -> &str {
    if rule.message.is_empty() {
        &rule.source
    } else {
        &rule.message
    }
}

/// The activation: `self`, and `oldSelf` (an optional for `optionalOldSelf` rules).
fn context<'a>(this: &Cel, old: Option<&Cel>, optional: bool) -> Option<Context<'a, 'a>> {
    let mut ctx = Context::with_env(ENV.clone());
    ctx.add_variable_from_value("self", this.clone());
    if optional {
        let opt = match old {
            Some(o) => CelOptional::of(Box::<dyn Val>::try_from(o.clone()).ok()?),
            None => CelOptional::none(),
        };
        ctx.add_variable_as_val("oldSelf", Box::new(opt));
    } else if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", o.clone());
    }
    Some(ctx)
}

/// A messageExpression's result when it is a usable message (upstream falls back to
/// the rule's message otherwise).
fn message(result: Result<Cel, ExecutionError>) -> Option<String> {
    match result {
        Ok(Cel::String(s)) => {
            let t = s.trim();
            (!t.is_empty() && !t.contains('\n') && t.len() <= 5 * 1024).then(|| t.to_string())
        }
        _ => None,
    }
}

/// upstream's `ruleMessageOrDefault`.
fn default_message(rule: &Rule) -> String {
    if rule.message.is_empty() {
        format!("failed rule: {}", rule.source)
    } else {
        rule.message.clone()
    }
}

/// An evaluation error as upstream words it: `no such key: x evaluating rule: <rule>`.
fn eval_error(e: &ExecutionError, rule: &str) -> String {
    match e {
        ExecutionError::NoSuchOverload(_) => format!(
            "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {rule}"
        ),
        other => format!("{} evaluating rule: {rule}", upstream_wording(other)),
    }
}

fn upstream_wording(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::FunctionError { function, message } if function == VERBATIM => {
            message.clone()
        }
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {i:?}"),
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

/// upstream's `fieldErrorForReason`.
fn for_reason(reason: Option<&str>, path: String, schema_type: &str, detail: String) -> FieldError {
    match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
        Some("FieldValueRequired") => FieldError::required(path, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(path, schema_type),
        _ => FieldError::invalid(path, schema_type, detail),
    }
}

/// The `x-kubernetes-list-map-keys` of a `map` list.
fn map_keys(schema: &Value) -> Option<Vec<String>> {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    let keys = schema.get("x-kubernetes-list-map-keys")?.as_array()?;
    Some(
        keys.iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
    )
}

/// The old item with the same map keys as `item`.
fn correlate<'a>(keys: &[String], item: &Value, old: Option<&'a Value>) -> Option<&'a Value> {
    old?.as_array()?
        .iter()
        .find(|o| keys.iter().all(|k| o.get(k) == item.get(k)))
}
