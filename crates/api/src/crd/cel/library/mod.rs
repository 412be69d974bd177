//! The Kubernetes CEL libraries the cel crate lacks, one module per upstream
//! library (`k8s.io/apiserver/pkg/cel/library`), plus the runtime cost budget
//! (`cost.rs`). Each module registers its overloads on the shared `Env`.

mod bind;
mod cidr;
pub(super) mod cost;
mod format;
mod ip;
mod lists;
mod quantity;
mod regex;
mod semver;
mod sets;
pub(super) mod two_var;
mod two_var_eval;
mod url;

use std::sync::Arc;

use cel::common::types::CelList;
use cel::common::value::{CowVal, FromVal, Val};
use cel::{DeclarationError, Env, ExecutionError, Value};

pub(super) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    lists::register(env)?;
    regex::register(env)?;
    quantity::register(env)?;
    url::register(env)?;
    ip::register(env)?;
    cidr::register(env)?;
    semver::register(env)?;
    sets::register(env)?;
    format::register(env)?;
    bind::register(env)?;
    two_var::register(env)?;
    cost::register(env)
}

/// The function name of errors whose message is upstream's wording as is
/// (`cannot convert value to integer`); `eval.rs` shows only the message.
pub(crate) const VERBATIM: &str = "@verbatim";

pub(super) type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
pub(super) type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// An error worded as upstream words it.
pub(super) fn fail(msg: impl Into<String>) -> ExecutionError {
    ExecutionError::function_error(VERBATIM, msg.into())
}

pub(super) fn values(args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter().map(|a| Value::try_from(a.as_ref())).collect()
}

pub(super) fn owned<'b, 'v>(v: Value) -> Ret<'b, 'v> {
    let boxed: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(boxed))
}

pub(super) fn boolean<'b, 'v>(b: bool) -> Ret<'b, 'v> {
    owned(Value::Bool(b))
}

pub(super) fn int<'b, 'v>(i: i64) -> Ret<'b, 'v> {
    owned(Value::Int(i))
}

pub(super) fn string<'b, 'v>(s: impl Into<String>) -> Ret<'b, 'v> {
    owned(Value::String(Arc::new(s.into())))
}

/// A value of one of the library's own types.
pub(super) fn custom<'b, 'v>(v: impl Val + 'static) -> Ret<'b, 'v> {
    Ok(CowVal::Owned(Box::new(v)))
}

/// Argument `i` as the library type `T`; the overload's signature made it one.
pub(super) fn arg<'a, 'b: 'a, 'v: 'a, T: FromVal<'a, 'v>>(
    args: &'a [CowVal<'b, 'v>],
    i: usize,
) -> Result<&'a T, ExecutionError> {
    let v: &'a (dyn Val + 'v) = args
        .get(i)
        .ok_or(ExecutionError::MissingArgumentOrTarget)?
        .as_ref();
    v.downcast_ref::<T>()
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: v.get_type().name().to_owned(),
            want: std::any::type_name::<T>().to_owned(),
        })
}

/// Argument `i` as a string.
pub(super) fn str_arg(args: &[CowVal<'_, '_>], i: usize) -> Result<String, ExecutionError> {
    match args.get(i).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::String(s))) => Ok(s.to_string()),
        Some(Ok(other)) => Err(ExecutionError::no_such_overload(
            "string",
            vec![format!("{:?}", other.type_of())],
        )),
        Some(Err(e)) => Err(e),
        None => Err(ExecutionError::MissingArgumentOrTarget),
    }
}

/// Argument `i` as an int.
pub(super) fn int_arg(args: &[CowVal<'_, '_>], i: usize) -> Result<i64, ExecutionError> {
    match args.get(i).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::Int(n))) => Ok(n),
        Some(Err(e)) => Err(e),
        _ => Err(ExecutionError::no_such_overload("int", vec![])),
    }
}

/// Argument `i` as a list's elements.
pub(super) fn list_arg<'a, 'v>(
    args: &'a [CowVal<'_, 'v>],
    i: usize,
) -> Result<&'a [Box<dyn Val + 'v>], ExecutionError> {
    let v = args.get(i).ok_or(ExecutionError::MissingArgumentOrTarget)?;
    v.downcast_ref::<CelList>()
        .map(CelList::inner)
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: v.get_type().name().to_owned(),
            want: "list".to_owned(),
        })
}

/// Implements `Val` for a library type: its CEL type (named as upstream names
/// it), equality by `PartialEq`, and downcasting.
macro_rules! library_type {
    ($t:ty, $cel:ident, $name:literal) => {
        static $cel: cel::common::types::Type = <$t>::TYPE;

        impl $t {
            /// Its CEL type, for declaring overloads.
            pub(super) const TYPE: cel::common::types::Type =
                cel::common::types::Type::new_unspecified_type($name);
        }

        impl cel::common::value::Val for $t {
            fn get_type(&self) -> &cel::common::types::Type {
                &$cel
            }
            fn cel_type() -> &'static cel::common::types::Type {
                &$cel
            }
            fn equals(&self, other: &dyn cel::common::value::Val) -> bool {
                other.downcast_ref::<$t>().is_some_and(|o| o == self)
            }
            fn clone_as_boxed<'v>(&self) -> Box<dyn cel::common::value::Val + 'v> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }
        }
        impl cel::common::value::StaticVal for $t {}
    };
}
pub(super) use library_type;

/// Runs `src` in the shared environment, for the modules' unit tests.
#[cfg(test)]
pub(super) fn eval(src: &str) -> Result<Value, ExecutionError> {
    let program = super::functions::ENV
        .compile(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"));
    let expr = two_var::lower(program.expression().clone());
    cel::Context::with_env(super::functions::ENV.clone()).resolve(&expr)
}

/// Asserts that `src` evaluates to true, for unit tests.
#[cfg(test)]
pub(super) fn yes(src: &str) {
    assert_eq!(eval(src), Ok(Value::Bool(true)), "{src}");
}

/// The verbatim message of a library error, for unit tests.
#[cfg(test)]
pub(super) fn eval_err(src: &str) -> String {
    match eval(src) {
        Err(ExecutionError::FunctionError { message, .. }) => message,
        other => panic!("{src}: expected a library error, got {other:?}"),
    }
}

/// A library function with the shape every overload has.
pub(super) type Predicate = for<'b, 'v> fn(Args<'b, 'v>) -> Ret<'b, 'v>;
