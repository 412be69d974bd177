//! A light static check of a parsed rule, standing in for cel-go's type checker
//! (the cel crate only parses): identifiers must be `self`, `oldSelf`, a
//! comprehension variable or a type name; functions must exist; a field selected
//! from a schema node with fixed properties must be one of them; and the rule must
//! be able to evaluate to a bool. Everything else (e.g. `self.replicas + 'a'`) is
//! left to evaluation, where it fails as a `no such overload` error.

use cel::common::ast::{ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use serde_json::Value;

use super::functions::{FUNCTIONS, TYPE_NAMES};
use super::library::two_var::MAP_INSERT;
use crate::crd::schema::{
    additional_any, additional_schema, items, preserves_unknown, properties, ty,
};

/// What is known statically of an expression's type.
#[derive(Clone, Copy)]
pub(super) enum Ty<'a> {
    /// A value of this schema node; `bool` marks a resource root.
    Schema(&'a Value, bool),
    Bool,
    /// Known, and not a bool.
    Other,
    Dyn,
}

/// One issue, at the expression whose id it carries.
pub(super) struct Issue {
    pub id: u64,
    pub msg: String,
}

pub(super) struct Checker<'a> {
    pub(super) scope: Vec<(String, Ty<'a>)>,
}

/// Checks `e` with `self` (and `oldSelf`) bound to `schema`; returns its type.
pub(super) fn check<'a>(e: &IdedExpr, schema: &'a Value, root: bool) -> Result<Ty<'a>, Issue> {
    Checker::new(schema, root).infer(e)
}

/// Whether `t` may be a bool at run time.
pub(super) fn may_be_bool(t: Ty<'_>) -> bool {
    match t {
        Ty::Bool | Ty::Dyn => true,
        Ty::Other => false,
        Ty::Schema(s, _) => matches!(ty(s), "" | "boolean"),
    }
}

/// Whether the expression reads `oldSelf` (making the rule a transition rule).
pub(super) fn uses_old_self(e: &IdedExpr) -> bool {
    let mut found = false;
    visit(e, &mut |x| {
        found |= matches!(&x.expr, Expr::Ident(n) if n == "oldSelf")
    });
    found
}

fn visit(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            c.target.iter().for_each(|t| visit(t, f));
            c.args.iter().for_each(|a| visit(a, f));
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(x, f);
            }
        }
        Expr::List(l) => l.elements.iter().for_each(|x| visit(x, f)),
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    visit(&me.key, f);
                    visit(&me.value, f);
                }
            }
        }
        Expr::Select(s) => visit(&s.operand, f),
        _ => {}
    }
}

fn issue(id: u64, msg: impl Into<String>) -> Issue {
    Issue {
        id,
        msg: msg.into(),
    }
}

const BOOL_OPERATORS: &[&str] = &[
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_&&_",
    "_||_",
    "!_",
    "@in",
    "@not_strictly_false",
];
const BOOL_FUNCTIONS: &[&str] = &[
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "isSorted",
    "hasValue",
    "bool",
    "isQuantity",
    "isInteger",
    "isGreaterThan",
    "isLessThan",
    "isURL",
    "isIP",
    "isCanonical",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "isCIDR",
    "isSemver",
    "containsIP",
    "containsCIDR",
    "equivalent",
    "intersects",
];
const NAMESPACES: &[&str] = &["strings", "lists", "optional", "sets", "ip", "format"];

impl<'a> Checker<'a> {
    /// A checker with `self` (and `oldSelf`) bound to `schema`.
    pub(super) fn new(schema: &'a Value, root: bool) -> Self {
        let this = Ty::Schema(schema, root);
        Checker {
            scope: vec![("self".into(), this), ("oldSelf".into(), this)],
        }
    }

    fn lookup(&self, name: &str) -> Option<Ty<'a>> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
    }

    /// Binds the names a comprehension over `range` declares: the element (list
    /// items, map keys), or with two names the index and item, or key and value.
    pub(super) fn bind_iter_vars(&mut self, c: &ComprehensionExpr, range: Ty<'a>) {
        match &c.iter_var2 {
            None => self.scope.push((c.iter_var.clone(), element(range))),
            Some(second) => {
                let first = match range {
                    Ty::Dyn => Ty::Dyn,
                    _ => Ty::Other,
                };
                self.scope.push((c.iter_var.clone(), first));
                self.scope.push((second.clone(), element_value(range)));
            }
        }
    }

    pub(super) fn infer(&mut self, e: &IdedExpr) -> Result<Ty<'a>, Issue> {
        match &e.expr {
            Expr::Ident(name) => match self.lookup(name) {
                Some(t) => Ok(t),
                None if TYPE_NAMES.contains(&name.as_str()) => Ok(Ty::Other),
                None => Err(issue(
                    e.id,
                    format!("undeclared reference to '{name}' (in container '')"),
                )),
            },
            Expr::Literal(LiteralValue::Boolean(_)) => Ok(Ty::Bool),
            Expr::Literal(LiteralValue::Null) => Ok(Ty::Dyn),
            Expr::Literal(_) => Ok(Ty::Other),
            Expr::Select(s) => {
                let operand = self.infer(&s.operand)?;
                let field = select(operand, &s.field).map_err(|m| issue(e.id, m))?;
                Ok(if s.test { Ty::Bool } else { field })
            }
            Expr::Call(c) => self.call(e.id, &c.func_name, c.target.as_deref(), &c.args),
            Expr::Comprehension(c) => {
                let range = self.infer(&c.iter_range)?;
                let init = self.infer(&c.accu_init)?;
                let depth = self.scope.len();
                self.bind_iter_vars(c, range);
                self.scope.push((c.accu_var.clone(), init));
                let out = (|| {
                    self.infer(&c.loop_cond)?;
                    self.infer(&c.loop_step)?;
                    self.infer(&c.result)
                })();
                self.scope.truncate(depth);
                out
            }
            Expr::List(l) => {
                for x in &l.elements {
                    self.infer(x)?;
                }
                Ok(Ty::Other)
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.infer(&me.key)?;
                        self.infer(&me.value)?;
                    }
                }
                Ok(Ty::Other)
            }
            Expr::Struct(s) => Err(issue(
                e.id,
                format!(
                    "undeclared reference to '{}' (in container '')",
                    s.type_name
                ),
            )),
            Expr::Unspecified => Ok(Ty::Dyn),
        }
    }

    fn call(
        &mut self,
        id: u64,
        name: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
    ) -> Result<Ty<'a>, Issue> {
        let namespaced = match target.map(|t| &t.expr) {
            Some(Expr::Ident(ns))
                if NAMESPACES.contains(&ns.as_str()) && self.lookup(ns).is_none() =>
            {
                Some(format!("{ns}.{name}"))
            }
            _ => None,
        };
        let full = namespaced.as_deref().unwrap_or(name);
        let operator = name.starts_with('_') || name.starts_with('@') || name.starts_with("!_");
        if !operator && !FUNCTIONS.contains(&full) {
            return Err(issue(
                id,
                format!("undeclared reference to '{full}' (in container '')"),
            ));
        }
        let target_ty = match (target, &namespaced) {
            (Some(t), None) => Some(self.infer(t)?),
            _ => None,
        };
        let mut arg_tys = Vec::with_capacity(args.len());
        for a in args {
            arg_tys.push(self.infer(a)?);
        }
        Ok(match name {
            _ if BOOL_OPERATORS.contains(&name) || BOOL_FUNCTIONS.contains(&name) => Ty::Bool,
            "_?_:_" => match (arg_tys.get(1), arg_tys.get(2)) {
                (Some(a), Some(b)) if !may_be_bool(*a) && !may_be_bool(*b) => Ty::Other,
                (Some(Ty::Bool), Some(Ty::Bool)) => Ty::Bool,
                _ => Ty::Dyn,
            },
            "_[_]" => match (arg_tys.first(), args.get(1).map(|a| &a.expr)) {
                (Some(Ty::Schema(s, _)), Some(Expr::Literal(LiteralValue::String(k))))
                    if ty(s) == "object" =>
                {
                    select(Ty::Schema(s, false), k).unwrap_or(Ty::Dyn)
                }
                (Some(t), _) => element_value(*t),
                _ => Ty::Dyn,
            },
            "size" | "indexOf" | "lastIndexOf" | "int" | "uint" | "double" | "string" => Ty::Other,
            // The Kubernetes libraries' values that are not bools.
            "quantity" | "sign" | "compareTo" | "asInteger" | "asApproximateFloat" | "add"
            | "sub" | "url" | "getScheme" | "getHost" | "getHostname" | "getPort"
            | "getEscapedPath" | "getQuery" | "ip" | "cidr" | "family" | "prefixLength"
            | "masked" | "validate" | "named" | "timestamp" | "duration" | "semver" | "major"
            | "minor" | "patch" | MAP_INSERT => Ty::Other,
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" => Ty::Other,
            _ => {
                let _ = target_ty;
                Ty::Dyn
            }
        })
    }
}

/// The type of `field` selected from a value of type `t`, or upstream's error.
fn select<'a>(t: Ty<'a>, field: &str) -> Result<Ty<'a>, String> {
    let Ty::Schema(s, root) = t else {
        return Ok(Ty::Dyn);
    };
    if root && matches!(field, "apiVersion" | "kind" | "metadata") {
        return Ok(Ty::Dyn);
    }
    if let Some(p) = properties(s).and_then(|p| p.get(field)) {
        return Ok(Ty::Schema(p, crate::crd::schema::embedded(p)));
    }
    if let Some(a) = additional_schema(s) {
        return Ok(Ty::Schema(a, crate::crd::schema::embedded(a)));
    }
    if additional_any(s) || preserves_unknown(s) || crate::crd::schema::int_or_string(s) {
        return Ok(Ty::Dyn);
    }
    match ty(s) {
        "object" => Err(format!("undefined field '{field}'")),
        "" => Ok(Ty::Dyn),
        other => Err(format!(
            "type '{}' does not support field selection",
            cel_type_name(other)
        )),
    }
}

fn cel_type_name(schema_type: &str) -> &str {
    match schema_type {
        "integer" => "int",
        "number" => "double",
        "boolean" => "bool",
        "array" => "list(dyn)",
        other => other,
    }
}

/// What a comprehension over `t` binds its variable to: list items, map keys.
pub(super) fn element(t: Ty<'_>) -> Ty<'_> {
    match t {
        Ty::Schema(s, _) if ty(s) == "array" => {
            items(s).map_or(Ty::Dyn, |i| Ty::Schema(i, crate::crd::schema::embedded(i)))
        }
        Ty::Schema(s, _) if ty(s) == "object" => Ty::Other,
        _ => Ty::Dyn,
    }
}

/// What indexing a value of type `t` yields: list items, map values.
fn element_value(t: Ty<'_>) -> Ty<'_> {
    match t {
        Ty::Schema(s, _) if ty(s) == "array" => element(t),
        Ty::Schema(s, _) => additional_schema(s).map_or(Ty::Dyn, |a| Ty::Schema(a, false)),
        _ => Ty::Dyn,
    }
}
