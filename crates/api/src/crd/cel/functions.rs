//! The CEL environment rules are compiled and run in: the standard library, the
//! strings and lists extensions the cel crate ships, and the Kubernetes list and
//! regex functions it lacks (`isSorted`, `sum`, `min`, `max`, list `indexOf` /
//! `lastIndexOf`, `find`, `findAll`).
//!
//! Not provided (upstream has them): `quantity()`, `url()`, `ip()`, `cidr()`,
//! `format.*`, `sets.*`, `duration()` / `timestamp()` (the crate's chrono feature is
//! off), two-variable comprehensions and `cel.bind`.

use std::cmp::Ordering;
use std::sync::{Arc, LazyLock};

use cel::common::types::{DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, Value};

/// Built once: every rule of every CRD shares it.
pub(super) static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build()));

fn build() -> Env {
    let mut env = Env::stdlib();
    let added = env
        .add_extension(cel::extensions::strings)
        .and_then(|_| env.add_extension(cel::extensions::lists))
        .and_then(|_| kubernetes(&mut env));
    added.expect("the CEL library declares each overload once");
    env
}

fn kubernetes(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find)?;
    env.add_member_overload(
        "findAll",
        "string_find_all",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_n",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    Ok(())
}

/// The names a rule may call (besides operators), checked when a CRD is written so
/// that a typo is refused then, as upstream's type checker refuses it.
pub(super) const FUNCTIONS: &[&str] = &[
    // standard library
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    // strings extension
    "charAt",
    "indexOf",
    "lastIndexOf",
    "join",
    "lowerAscii",
    "upperAscii",
    "trim",
    "replace",
    "split",
    "substring",
    "format",
    "reverse",
    "strings.quote",
    // lists extension
    "slice",
    "flatten",
    "distinct",
    "sort",
    "sortBy",
    "lists.range",
    // Kubernetes lists and regex libraries
    "isSorted",
    "sum",
    "min",
    "max",
    "find",
    "findAll",
    // optionals
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "hasValue",
    "value",
    "orValue",
    "or",
];

/// The identifiers that name types (`type(self) == string`).
pub(super) const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "null",
];

fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

fn owned<'b, 'v>(v: Value) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn list_arg(function: &str, v: &Value) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(ExecutionError::function_error(
            function,
            format!("expected a list, got {:?}", other.type_of()),
        )),
    }
}

fn compare(function: &str, a: &Value, b: &Value) -> Result<Ordering, ExecutionError> {
    a.partial_cmp(b)
        .ok_or_else(|| ExecutionError::function_error(function, "elements are not comparable"))
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let vals = values(&args)?;
    let list = list_arg("isSorted", &vals[0])?;
    for pair in list.windows(2) {
        if compare("isSorted", &pair[0], &pair[1])? == Ordering::Greater {
            return owned(Value::Bool(false));
        }
    }
    owned(Value::Bool(true))
}

/// `[].sum()` is 0, as upstream's int-typed empty list sums to.
fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let vals = values(&args)?;
    let list = list_arg("sum", &vals[0])?;
    let mut total = Value::Int(0);
    for (i, v) in list.iter().enumerate() {
        total = match (i, &total, v) {
            (0, _, v) => v.clone(),
            (_, Value::Int(a), Value::Int(b)) => a
                .checked_add(*b)
                .map(Value::Int)
                .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            (_, Value::UInt(a), Value::UInt(b)) => a
                .checked_add(*b)
                .map(Value::UInt)
                .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            (_, Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(ExecutionError::function_error("sum", "no such overload")),
        };
    }
    owned(total)
}

fn extreme<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    keep: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let vals = values(&args)?;
    let list = list_arg(function, &vals[0])?;
    let mut best: Option<&Value> = None;
    for v in list.iter() {
        best = match best {
            Some(b) if compare(function, v, b)? != keep => Some(b),
            _ => Some(v),
        };
    }
    match best {
        Some(b) => owned(b.clone()),
        None => Err(ExecutionError::function_error(
            function,
            format!("{function} called on empty list"),
        )),
    }
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme(args, "min", Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme(args, "max", Ordering::Greater)
}

fn position(args: &[CowVal<'_, '_>], last: bool) -> Result<i64, ExecutionError> {
    let vals = values(args)?;
    let list = list_arg("indexOf", &vals[0])?;
    let hit = |v: &&Value| **v == vals[1];
    let found = if last {
        list.iter().rposition(|v| hit(&v))
    } else {
        list.iter().position(|v| hit(&v))
    };
    Ok(found.map_or(-1, |i| i as i64))
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    owned(Value::Int(position(&args, false)?))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    owned(Value::Int(position(&args, true)?))
}

fn regex_args(args: &[CowVal<'_, '_>]) -> Result<(String, regex::Regex, i64), ExecutionError> {
    let vals = values(args)?;
    let (Value::String(text), Value::String(pattern)) = (&vals[0], &vals[1]) else {
        return Err(ExecutionError::function_error("find", "no such overload"));
    };
    let re = regex::Regex::new(pattern)
        .map_err(|e| ExecutionError::function_error("find", e.to_string()))?;
    let limit = match vals.get(2) {
        Some(Value::Int(n)) => *n,
        _ => -1,
    };
    Ok((text.to_string(), re, limit))
}

/// The first match, or `""`.
fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (text, re, _) = regex_args(&args)?;
    let hit = re
        .find(&text)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    owned(Value::String(Arc::new(hit)))
}

/// Every match, or the first `n` when `n` is not negative.
fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (text, re, limit) = regex_args(&args)?;
    let take = usize::try_from(limit).unwrap_or(usize::MAX);
    let hits: Vec<Value> = re
        .find_iter(&text)
        .take(take)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    owned(Value::List(Arc::new(hits)))
}
