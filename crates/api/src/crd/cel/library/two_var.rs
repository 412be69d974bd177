//! cel-go's two-variable comprehensions (`ext.TwoVarComprehensions`, in
//! upstream's base environment since 1.32): `all`, `exists`, `existsOne` /
//! `exists_one` with `(i, v, predicate)`, and `transformList`, `transformMap`,
//! `transformMapEntry` with `(i, v, [filter,] expr)`, binding the index and
//! element of a list, or the key and value of a map.
//!
//! The macros expand, as cel-go expands them, into comprehensions carrying
//! both names (`iter_var2`), which the checker (`check.rs`), the estimate and
//! the cost rewriting see as they are. The cel crate's interpreter ignores
//! `iter_var2`, so before a rule runs, `lower` turns each such comprehension
//! into a one-variable one over `@pairs(range)` (`[[i, v], ...]`), reading the
//! two names as `pair[0]` and `pair[1]`; the loop step keeps its shape, which
//! the interpreter relies on (`all` absorbing errors, `transformList`
//! appending in place). The maps of `transformMap` and `transformMapEntry`
//! are built in place (`two_var_eval.rs`).

use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, LiteralValue, MapExpr,
    operators,
};
use cel::parser::{Macro, MacroExprHelper};
use cel::{Env, ParseError};

use super::cost::wrap;
use super::two_var_eval::{self, BUILD, BUILT, PAIRS};

/// cel-go's `cel.@mapInsert`: `(map, key, value)` or `(map, entries)`, failing
/// on a key the map already has.
pub(in super::super) const MAP_INSERT: &str = "@mapInsert";
/// The accumulator of the standard macros, which the parser also names so.
const ACCU: &str = "@result";
/// The accumulator name of older cel-go releases, also reserved upstream.
const LEGACY_ACCU: &str = "__result__";

#[derive(Clone, Copy)]
enum Kind {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
    TransformMapEntry,
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let macros = [
        ("all", 3, Kind::All),
        ("exists", 3, Kind::Exists),
        ("existsOne", 3, Kind::ExistsOne),
        ("exists_one", 3, Kind::ExistsOne),
        ("transformList", 3, Kind::TransformList),
        ("transformList", 4, Kind::TransformList),
        ("transformMap", 3, Kind::TransformMap),
        ("transformMap", 4, Kind::TransformMap),
        ("transformMapEntry", 3, Kind::TransformMapEntry),
        ("transformMapEntry", 4, Kind::TransformMapEntry),
    ];
    for (name, n, kind) in macros {
        env.add_macro(Macro::receiver(name, n, move |h, t, a| {
            expand(kind, h, t, a).map(Some)
        }))?;
    }
    two_var_eval::register(env)?;
    Ok(())
}

/// The two names, checked as cel-go checks them.
fn names(h: &MacroExprHelper<'_>, args: &[IdedExpr]) -> Result<(String, String), ParseError> {
    let name = |e: &IdedExpr| match &e.expr {
        Expr::Ident(n) => Ok(n.clone()),
        _ => Err(h.new_error(e.id, "argument must be a simple name")),
    };
    let (first, second) = (name(&args[0])?, name(&args[1])?);
    if first == second {
        return Err(h.new_error(args[1].id, format!("duplicate variable name: {first}")));
    }
    for (n, e) in [(&first, &args[0]), (&second, &args[1])] {
        if n == ACCU || n == LEGACY_ACCU {
            return Err(h.new_error(e.id, "iteration variable overwrites accumulator variable"));
        }
    }
    Ok((first, second))
}

fn call(h: &mut MacroExprHelper<'_>, name: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: name.to_string(),
        target: None,
        args,
    }))
}

fn accu(h: &mut MacroExprHelper<'_>) -> IdedExpr {
    h.next_expr(Expr::Ident(ACCU.to_string()))
}

fn literal(h: &mut MacroExprHelper<'_>, v: LiteralValue) -> IdedExpr {
    h.next_expr(Expr::Literal(v))
}

fn expand(
    kind: Kind,
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<IdedExpr, ParseError> {
    let (first, second) = names(h, args)?;
    let range = target.take().expect("a receiver macro has a target");
    let body = args.pop().expect("three or four arguments");
    let filter = (args.len() == 3).then(|| args.pop().expect("four arguments"));
    let yes = LiteralValue::Boolean(true.into());
    let (init, cond, step, result) = match kind {
        Kind::All => {
            let a = accu(h);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![a]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_AND, vec![a, body]);
            (literal(h, yes), cond, step, accu(h))
        }
        Kind::Exists => {
            let a = accu(h);
            let not = call(h, operators::LOGICAL_NOT, vec![a]);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![not]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_OR, vec![a, body]);
            let init = literal(h, LiteralValue::Boolean(false.into()));
            (init, cond, step, accu(h))
        }
        Kind::ExistsOne => {
            let (a, one) = (accu(h), literal(h, LiteralValue::Int(1.into())));
            let plus = call(h, operators::ADD, vec![a, one]);
            let a = accu(h);
            let step = call(h, operators::CONDITIONAL, vec![body, plus, a]);
            let (a, one) = (accu(h), literal(h, LiteralValue::Int(1.into())));
            let result = call(h, operators::EQUALS, vec![a, one]);
            let init = literal(h, LiteralValue::Int(0.into()));
            (init, literal(h, yes), step, result)
        }
        Kind::TransformList | Kind::TransformMap | Kind::TransformMapEntry => {
            let a = accu(h);
            let (init, step) = match kind {
                Kind::TransformList => {
                    let item = h.next_expr(Expr::List(ListExpr::new(vec![body])));
                    let step = call(h, operators::ADD, vec![a, item]);
                    (h.next_expr(Expr::List(ListExpr::new(Vec::new()))), step)
                }
                Kind::TransformMap => {
                    let key = h.next_expr(Expr::Ident(first.clone()));
                    let step = call(h, MAP_INSERT, vec![a, key, body]);
                    (empty_map(h), step)
                }
                _ => {
                    let step = call(h, MAP_INSERT, vec![a, body]);
                    (empty_map(h), step)
                }
            };
            let step = match filter {
                Some(f) => {
                    let a = accu(h);
                    call(h, operators::CONDITIONAL, vec![f, step, a])
                }
                None => step,
            };
            (init, literal(h, yes), step, accu(h))
        }
    };
    args.clear();
    Ok(h.next_expr(Expr::Comprehension(Box::new(ComprehensionExpr {
        iter_range: range,
        iter_var: first,
        iter_var2: Some(second),
        accu_var: ACCU.to_string(),
        accu_init: init,
        loop_cond: cond,
        loop_step: step,
        result,
    }))))
}

fn empty_map(h: &mut MacroExprHelper<'_>) -> IdedExpr {
    h.next_expr(Expr::Map(MapExpr {
        entries: Vec::new(),
    }))
}

/// `e` with every two-variable comprehension rewritten into the one-variable
/// form the interpreter runs (see the module's doc).
pub(in super::super) fn lower(mut e: IdedExpr) -> IdedExpr {
    lower_in(&mut e);
    e
}

fn lower_in(e: &mut IdedExpr) {
    let id = e.id;
    each_child(e, &mut lower_in);
    let Expr::Comprehension(c) = &mut e.expr else {
        return;
    };
    let Some(second) = c.iter_var2.take() else {
        return;
    };
    // `@` names cannot be written in a rule, and the id makes each loop's own.
    let pair = format!("@pair{id}");
    let first = std::mem::replace(&mut c.iter_var, pair.clone());
    for (name, index) in [(first, 0), (second, 1)] {
        let read = |at: u64| IdedExpr {
            id: at,
            expr: Expr::Call(CallExpr {
                func_name: operators::INDEX.to_string(),
                target: None,
                args: vec![
                    IdedExpr {
                        id: at,
                        expr: Expr::Ident(pair.clone()),
                    },
                    IdedExpr {
                        id: at,
                        expr: Expr::Literal(LiteralValue::Int(index.into())),
                    },
                ],
            }),
        };
        substitute(&mut c.loop_cond, &name, &read);
        substitute(&mut c.loop_step, &name, &read);
    }
    wrap(&mut c.iter_range, PAIRS, None);
    // `transformMap` / `transformMapEntry` build their map in place (an
    // insert into a copy of the map at each step would be quadratic).
    if matches!(&c.accu_init.expr, Expr::Map(m) if m.entries.is_empty()) {
        c.accu_init.expr = Expr::Call(CallExpr {
            func_name: BUILD.to_string(),
            target: None,
            args: Vec::new(),
        });
        wrap(&mut c.result, BUILT, None);
    }
}

/// Replaces the free occurrences of `name` in `e` with `read(id)`.
fn substitute(e: &mut IdedExpr, name: &str, read: &dyn Fn(u64) -> IdedExpr) {
    match &mut e.expr {
        Expr::Ident(n) if n == name => *e = read(e.id),
        Expr::Comprehension(c) => {
            substitute(&mut c.iter_range, name, read);
            substitute(&mut c.accu_init, name, read);
            let in_loop = c.iter_var == name || c.iter_var2.as_deref() == Some(name);
            if c.accu_var != name {
                substitute(&mut c.result, name, read);
                if !in_loop {
                    substitute(&mut c.loop_cond, name, read);
                    substitute(&mut c.loop_step, name, read);
                }
            }
        }
        _ => each_child(e, &mut |x| substitute(x, name, read)),
    }
}

/// Calls `f` on each direct subexpression of `e`.
fn each_child(e: &mut IdedExpr, f: &mut dyn FnMut(&mut IdedExpr)) {
    match &mut e.expr {
        Expr::Call(c) => {
            if let Some(t) = c.target.as_deref_mut() {
                f(t);
            }
            c.args.iter_mut().for_each(f);
        }
        Expr::Comprehension(c) => {
            for x in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                f(x);
            }
        }
        Expr::Select(s) => f(&mut s.operand),
        Expr::List(l) => l.elements.iter_mut().for_each(f),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    f(&mut me.key);
                    f(&mut me.value);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                if let EntryExpr::StructField(sf) = &mut entry.expr {
                    f(&mut sf.value);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "two_var_tests.rs"]
mod tests;
