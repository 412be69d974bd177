//! cel-go's bindings extension, which upstream's environment includes:
//! `cel.bind(name, init, expr)` evaluates `expr` with `name` bound to `init`,
//! expanded at parse time, as cel-go expands it, into a comprehension over an
//! empty list whose accumulator is the bound variable.

use cel::common::ast::{ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue};
use cel::parser::{Macro, MacroExprHelper};
use cel::{Env, ParseError};

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_macro(Macro::receiver("bind", 3, bind))
}

fn bind(
    helper: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    if !matches!(target.as_ref().map(|t| &t.expr), Some(Expr::Ident(ns)) if ns == "cel") {
        return Ok(None);
    }
    let name = match &args[0].expr {
        Expr::Ident(n) => n.clone(),
        _ => {
            return Err(helper.new_error(
                args[0].id,
                "cel.bind() variable names must be simple identifiers",
            ));
        }
    };
    let body = args.pop().expect("three arguments");
    let init = args.pop().expect("three arguments");
    let comprehension = ComprehensionExpr {
        iter_range: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: name.clone(),
        accu_init: init,
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(false.into()))),
        loop_step: helper.next_expr(Expr::Ident(name)),
        result: body,
    };
    Ok(Some(
        helper.next_expr(Expr::Comprehension(Box::new(comprehension))),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::eval;
    use cel::Value;

    #[test]
    fn binds_a_name() {
        assert_eq!(eval("cel.bind(x, 2, x * x) == 4"), Ok(Value::Bool(true)));
        assert_eq!(
            eval("cel.bind(a, 'x', cel.bind(b, a + 'y', b + a)) == 'xyx'"),
            Ok(Value::Bool(true))
        );
    }
}
