//! The runtime cost budget. The cel crate has no cost tracking, so a compiled
//! rule is rewritten (`instrument`) to charge a per-thread budget as it runs:
//! every comprehension charges, before it loops, the size of its range times
//! the calls in its body, and every variable or field a call reads charges one
//! plus a tenth of its size (strings, bytes, lists, maps), as cel-go charges
//! traversals. A charge past the budget fails the evaluation with upstream's
//! `operation cancelled: actual cost limit exceeded`, and no further charge
//! succeeds, so the work done past the budget stays bounded.
//!
//! Differences from upstream: cel-go charges each evaluated node as it goes;
//! this charges an iteration's body whole, whichever branches run, so a rule
//! near the limit may be refused here and pass upstream.
//! The estimate checked when a CRD is written is `estimate.rs`.

use std::cell::Cell;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{CelBytes, CelList, CelMap, CelString, DYN_TYPE, INT_TYPE};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError};

use super::{Args, Ret};

/// upstream's `PerCallLimit`: the most one rule's evaluation may cost.
pub(crate) const PER_CALL_LIMIT: u64 = 1_000_000;
/// upstream's `RuntimeCELCostBudget`: the most all rules of one object may cost.
pub(crate) const RUNTIME_BUDGET: u64 = 10_000_000;
/// cel-go's error when a rule runs out of budget.
pub(crate) const EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";

const RANGE: &str = "@cost_range";
const TICK: &str = "@cost_tick";
const READ: &str = "@cost_read";

thread_local! {
    /// What the evaluation running on this thread may still spend.
    static LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    static EXHAUSTED: Cell<bool> = const { Cell::new(false) };
}

/// What one metered evaluation spent.
pub(crate) struct Spent {
    pub cost: u64,
    /// The budget ran out: whatever the evaluation returned, it failed.
    pub exhausted: bool,
}

/// Runs `f` (an evaluation) with `limit` to spend.
pub(crate) fn metered<T>(limit: u64, f: impl FnOnce() -> T) -> (T, Spent) {
    let before = (LEFT.replace(limit), EXHAUSTED.replace(false));
    let out = f();
    let left = LEFT.replace(before.0);
    let exhausted = EXHAUSTED.replace(before.1);
    let spent = Spent {
        cost: limit - left,
        exhausted,
    };
    (out, spent)
}

fn charge(n: u64) -> Result<(), ExecutionError> {
    let left = LEFT.get();
    if n > left || EXHAUSTED.get() {
        LEFT.set(0);
        EXHAUSTED.set(true);
        return Err(ExecutionError::function_error(super::VERBATIM, EXCEEDED));
    }
    LEFT.set(left - n);
    Ok(())
}

/// Elements, bytes or entries: what traversing the value costs.
fn size(v: &CowVal<'_, '_>) -> u64 {
    let n = if let Some(s) = v.downcast_ref::<CelString>() {
        s.inner().len()
    } else if let Some(b) = v.downcast_ref::<CelBytes>() {
        b.inner().len()
    } else if let Some(l) = v.downcast_ref::<CelList>() {
        l.inner().len()
    } else if let Some(m) = v.downcast_ref::<CelMap>() {
        m.inner().len()
    } else {
        0
    };
    n as u64
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_overload(RANGE, "cost_range", vec![DYN_TYPE, INT_TYPE], range)?;
    env.add_overload(TICK, "cost_tick", vec![DYN_TYPE, INT_TYPE], tick)?;
    env.add_overload(READ, "cost_read", vec![DYN_TYPE], read)?;
    Ok(())
}

/// `@cost_range(range, weight)`: the range, once `size × weight` is charged.
fn range<'b, 'v>(mut args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let weight = super::int_arg(&args, 1)?.max(1) as u64;
    charge(size(&args[0]).saturating_mul(weight))?;
    args.truncate(1);
    args.pop().ok_or(ExecutionError::MissingArgumentOrTarget)
}

/// `@cost_tick(cond, weight)`: a loop's condition, once `weight` is charged.
fn tick<'b, 'v>(mut args: Args<'b, 'v>) -> Ret<'b, 'v> {
    charge(super::int_arg(&args, 1)?.max(1) as u64)?;
    args.truncate(1);
    args.pop().ok_or(ExecutionError::MissingArgumentOrTarget)
}

/// `@cost_read(x)`: `x`, once reading it is charged.
fn read<'b, 'v>(mut args: Args<'b, 'v>) -> Ret<'b, 'v> {
    charge(1 + size(&args[0]) / 10)?;
    args.pop().ok_or(ExecutionError::MissingArgumentOrTarget)
}

/// Calls whose arguments are not charged: they do not traverse them, or they
/// are the plumbing of macros (whose shape the interpreter relies on).
const FREE: &[&str] = &[
    "_[_]",
    "_[?_]",
    "_?._",
    "_?_:_",
    "_&&_",
    "_||_",
    "!_",
    "@not_strictly_false",
    "size",
    "has",
];

/// The rule's expression, rewritten to charge the budget as it runs.
pub(crate) fn instrument(e: &IdedExpr) -> IdedExpr {
    let mut out = e.clone();
    let mut scope = vec!["self".to_string(), "oldSelf".to_string()];
    rewrite(&mut out, &mut scope);
    out
}

fn rewrite(e: &mut IdedExpr, scope: &mut Vec<String>) {
    match &mut e.expr {
        Expr::Call(c) => {
            if let Some(t) = c.target.as_deref_mut() {
                rewrite(t, scope);
            }
            c.args.iter_mut().for_each(|a| rewrite(a, scope));
            if FREE.contains(&c.func_name.as_str()) {
                return;
            }
            if let Some(t) = c.target.as_deref_mut()
                && reads_data(t, scope)
            {
                wrap(t, READ, None);
            }
            for a in c.args.iter_mut().filter(|a| reads_data(a, scope)) {
                wrap(a, READ, None);
            }
        }
        Expr::Comprehension(c) => {
            rewrite(&mut c.iter_range, scope);
            rewrite(&mut c.accu_init, scope);
            let depth = scope.len();
            scope.push(c.iter_var.clone());
            scope.extend(c.iter_var2.clone());
            rewrite(&mut c.loop_cond, scope);
            rewrite(&mut c.loop_step, scope);
            scope.truncate(depth);
            rewrite(&mut c.result, scope);
            let weight = 1 + calls(&c.loop_cond) + calls(&c.loop_step);
            // The interpreter appends in place for a loop whose condition is a
            // literal (`map`, `filter`): that shape is kept.
            if matches!(c.loop_cond.expr, Expr::Literal(_)) {
                wrap(&mut c.iter_range, RANGE, Some(weight as i64));
            } else {
                wrap(&mut c.loop_cond, TICK, Some(weight as i64));
            }
        }
        Expr::Select(s) => rewrite(&mut s.operand, scope),
        Expr::List(l) => l.elements.iter_mut().for_each(|x| rewrite(x, scope)),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    rewrite(&mut me.key, scope);
                    rewrite(&mut me.value, scope);
                }
            }
        }
        _ => {}
    }
}

/// A read of data: `self`, a comprehension variable, or a field of one.
fn reads_data(e: &IdedExpr, scope: &[String]) -> bool {
    match &e.expr {
        Expr::Ident(n) => scope.contains(n),
        Expr::Select(s) => !s.test && reads_data(&s.operand, scope),
        _ => false,
    }
}

/// Replaces `e` with `function(e)`, or `function(e, weight)`.
pub(super) fn wrap(e: &mut IdedExpr, function: &str, weight: Option<i64>) {
    let id = e.id;
    let inner = std::mem::take(e);
    let mut args = vec![inner];
    args.extend(weight.map(|w| IdedExpr {
        id,
        expr: Expr::Literal(LiteralValue::Int(w.into())),
    }));
    *e = IdedExpr {
        id,
        expr: Expr::Call(CallExpr {
            func_name: function.to_string(),
            target: None,
            args,
        }),
    };
}

/// The calls in `e`: what one loop iteration costs at least.
fn calls(e: &IdedExpr) -> u64 {
    match &e.expr {
        Expr::Call(c) => {
            1 + c.target.as_deref().map_or(0, calls) + c.args.iter().map(calls).sum::<u64>()
        }
        Expr::Comprehension(c) => {
            calls(&c.iter_range) + calls(&c.accu_init) + calls(&c.loop_step) + calls(&c.result)
        }
        Expr::Select(s) => calls(&s.operand),
        Expr::List(l) => l.elements.iter().map(calls).sum(),
        Expr::Map(m) => m
            .entries
            .iter()
            .map(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => calls(&me.key) + calls(&me.value),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::{Context, Value};

    fn run(src: &str, limit: u64) -> (Result<Value, ExecutionError>, Spent) {
        let env = super::super::super::functions::ENV.clone();
        let program = env.compile(src).expect("compiles");
        let expr = instrument(program.expression());
        let mut ctx = Context::with_env(env);
        let big: Vec<i64> = (0..1000).collect();
        ctx.add_variable_from_value("self", big);
        metered(limit, || ctx.resolve(&expr))
    }

    #[test]
    fn cheap_rules_pass_and_report_their_cost() {
        let (out, spent) = run("self.all(x, x >= 0)", PER_CALL_LIMIT);
        assert_eq!(out, Ok(Value::Bool(true)));
        assert!(!spent.exhausted);
        assert!(spent.cost >= 1000 && spent.cost < 20_000, "{}", spent.cost);
        let (out, _) = run(
            "self.map(x, x * 2).filter(y, y > 10).size() == 994",
            PER_CALL_LIMIT,
        );
        assert_eq!(out, Ok(Value::Bool(true)));
    }

    #[test]
    fn nested_loops_run_out_of_budget() {
        let src = "self.all(x, self.all(y, self.all(z, x + y + z >= 0)))";
        let (out, spent) = run(src, PER_CALL_LIMIT);
        assert!(spent.exhausted);
        let Err(ExecutionError::FunctionError { message, .. }) = out else {
            panic!("{out:?}")
        };
        assert_eq!(message, EXCEEDED);
    }

    #[test]
    fn an_absorbed_error_still_counts_as_exhausted() {
        // `_ || true` would swallow the cost error: the flag does not.
        let (out, spent) = run("self.all(x, self.exists(y, x == y)) || true", 100);
        assert_eq!(out, Ok(Value::Bool(true)));
        assert!(spent.exhausted);
    }

    #[test]
    fn a_short_circuit_stops_the_charges() {
        let (out, spent) = run("self.exists(x, x == 10)", PER_CALL_LIMIT);
        assert_eq!(out, Ok(Value::Bool(true)));
        assert!(spent.cost < 200, "{}", spent.cost);
    }

    #[test]
    fn unmetered_evaluation_is_unlimited() {
        assert!(charge(u64::MAX / 2).is_ok());
    }
}
