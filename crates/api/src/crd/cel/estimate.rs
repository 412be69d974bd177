//! The estimated cost of a rule, checked when a CRD is written as upstream checks
//! it: a rule (or messageExpression) whose estimate exceeds
//! `StaticEstimatedCostLimit` is refused with upstream's `estimated rule cost
//! exceeds budget by factor of ...`.
//!
//! cel-go's estimator is not reproduced: this one is a lower bound of it, so a
//! rule refused here is refused upstream too, while some rules upstream refuses
//! (costly string functions, rules repeated under unbounded lists, the CRD-wide
//! total) are accepted here and left to the runtime budget (`library/cost.rs`).
//! Each variable, field and function call costs 1 (logical operators, and the
//! accumulators of macros, nothing), and a comprehension costs its body times
//! the most elements its range can have: the schema's `maxItems` /
//! `maxProperties`, or as many of the smallest elements as fit in a 3 MiB
//! request, as upstream assumes.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use serde_json::Value;

use super::check::{Checker, Ty};
use crate::crd::schema::{additional_schema, items, ty};

/// upstream's `StaticEstimatedCostLimit`.
pub(super) const STATIC_LIMIT: f64 = 10_000_000.0;
/// upstream's `MaxRequestSizeBytes`.
const MAX_REQUEST: f64 = 3.0 * 1024.0 * 1024.0;

/// The estimated cost of `e`, with `self` bound to `schema`.
pub(super) fn estimate(e: &IdedExpr, schema: &Value, root: bool) -> f64 {
    Checker::new(schema, root).cost(e)
}

/// upstream's message for an estimate past the limit, `None` within it.
pub(super) fn exceeded(what: &str, cost: f64) -> Option<String> {
    if cost <= STATIC_LIMIT {
        return None;
    }
    let factor = cost / STATIC_LIMIT;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    Some(format!(
        "estimated {what} cost exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    ))
}

const FREE: &[&str] = &["_&&_", "_||_", "_?_:_", "@not_strictly_false"];

impl Checker<'_> {
    fn cost(&mut self, e: &IdedExpr) -> f64 {
        match &e.expr {
            Expr::Ident(n) if n.starts_with('@') || n == "__result__" => 0.0,
            Expr::Ident(_) => 1.0,
            Expr::Select(s) => 1.0 + self.cost(&s.operand),
            Expr::Call(c) => {
                let own = if FREE.contains(&c.func_name.as_str()) {
                    0.0
                } else {
                    1.0
                };
                let target = c.target.as_deref().map_or(0.0, |t| self.cost(t));
                own + target + c.args.iter().map(|a| self.cost(a)).sum::<f64>()
            }
            Expr::List(l) => l.elements.iter().map(|x| self.cost(x)).sum(),
            Expr::Map(m) => m
                .entries
                .iter()
                .map(|entry| match &entry.expr {
                    EntryExpr::MapEntry(me) => self.cost(&me.key) + self.cost(&me.value),
                    _ => 0.0,
                })
                .sum(),
            Expr::Comprehension(c) => {
                let range = self.infer(&c.iter_range).unwrap_or(Ty::Dyn);
                let size = match &c.iter_range.expr {
                    Expr::List(l) => l.elements.len() as f64,
                    _ => cardinality(range),
                };
                let outside = self.cost(&c.iter_range) + self.cost(&c.accu_init);
                let depth = self.scope.len();
                self.bind_iter_vars(c, range);
                self.scope.push((c.accu_var.clone(), Ty::Dyn));
                let body = self.cost(&c.loop_cond) + self.cost(&c.loop_step);
                let result = self.cost(&c.result);
                self.scope.truncate(depth);
                outside + size * body + result
            }
            _ => 0.0,
        }
    }
}

/// The most elements a value of type `t` can have; 1 when unknown.
fn cardinality(t: Ty<'_>) -> f64 {
    let Ty::Schema(s, _) = t else { return 1.0 };
    let declared = |k: &str| s.get(k).and_then(Value::as_f64);
    match ty(s) {
        "array" => {
            declared("maxItems").unwrap_or_else(|| (MAX_REQUEST - 2.0) / (min_size(items(s)) + 1.0))
        }
        "object" => match additional_schema(s) {
            Some(a) => declared("maxProperties")
                .unwrap_or_else(|| (MAX_REQUEST - 2.0) / (min_size(Some(a)) + 4.0)),
            None => 1.0,
        },
        _ => 1.0,
    }
}

/// The fewest bytes a value of the schema takes in JSON (upstream's minimum
/// sizes); the largest of them when the schema says nothing.
fn min_size(s: Option<&Value>) -> f64 {
    let Some(s) = s else { return 4.0 };
    match ty(s) {
        "integer" | "number" => 1.0,
        "string" => 2.0 + s.get("minLength").and_then(Value::as_f64).unwrap_or(0.0),
        "array" | "object" => 2.0,
        _ => 4.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cost(rule: &str, schema: Value) -> f64 {
        let program = super::super::functions::ENV.compile(rule).expect("parses");
        estimate(program.expression(), &schema, false)
    }

    #[test]
    fn nested_loops_over_unbounded_lists_exceed_the_limit() {
        let list = json!({"type": "array", "items": {"type": "integer"}});
        let c = cost("self.all(x, self.all(y, x == y))", list.clone());
        assert!(c > 100.0 * STATIC_LIMIT, "{c}");
        assert!(
            exceeded("rule", c)
                .unwrap()
                .contains("by factor of more than 100x")
        );
        // One loop over the same list is fine.
        assert!(exceeded("rule", cost("self.all(x, x > 0)", list)).is_none());
    }

    #[test]
    fn max_items_bounds_the_estimate() {
        let list = json!({"type": "array", "maxItems": 100, "items": {"type": "integer"}});
        let c = cost("self.all(x, self.all(y, x == y))", list);
        assert!(c > 10_000.0 && c < 100_000.0, "{c}");
        let map = json!({"type": "object", "maxProperties": 10, "additionalProperties": {"type": "string"}});
        assert!(cost("self.all(k, self[k] != '')", map) < 100.0);
    }

    #[test]
    fn factors_are_worded_as_upstream() {
        assert_eq!(
            exceeded("rule", 1.2 * STATIC_LIMIT).unwrap(),
            "estimated rule cost exceeds budget by factor of 1.200000x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        );
        assert!(
            exceeded("rule", 2.46 * STATIC_LIMIT)
                .unwrap()
                .contains("factor of 2.5x")
        );
    }
}
