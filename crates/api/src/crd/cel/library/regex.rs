//! Upstream's Kubernetes regex library: `find`, `findAll`.

use std::sync::Arc;

use cel::common::types::{INT_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError, Value};

use super::{owned, values};

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
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
