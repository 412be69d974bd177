//! cel-go's sets extension, which upstream's environment includes:
//! `sets.contains`, `sets.equivalent`, `sets.intersects`, over lists compared
//! element by element with CEL equality (so `1 == 1.0`).

use cel::Env;
use cel::common::types::LIST_TYPE;
use cel::common::value::Val;

use super::{Args, Ret, boolean, list_arg};

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let lists = || vec![LIST_TYPE, LIST_TYPE];
    env.add_overload(
        "sets.contains",
        "list_sets_contains_list",
        lists(),
        contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        lists(),
        equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        lists(),
        intersects,
    )?;
    Ok(())
}

/// Whether every element of `b` is in `a`.
fn includes(a: &[Box<dyn Val + '_>], b: &[Box<dyn Val + '_>]) -> bool {
    b.iter().all(|x| a.iter().any(|y| y.equals(x.as_ref())))
}

fn contains<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(includes(list_arg(&args, 0)?, list_arg(&args, 1)?))
}

fn equivalent<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = (list_arg(&args, 0)?, list_arg(&args, 1)?);
    boolean(includes(a, b) && includes(b, a))
}

fn intersects<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let (a, b) = (list_arg(&args, 0)?, list_arg(&args, 1)?);
    boolean(b.iter().any(|x| a.iter().any(|y| y.equals(x.as_ref()))))
}

#[cfg(test)]
mod tests {
    use super::super::yes;

    #[test]
    fn set_relations() {
        yes(
            "sets.contains([], []) && sets.contains([1, 2, 3], [3, 1]) && !sets.contains([1], [1, 2])",
        );
        yes("sets.contains([1, 2], [2.0]) && sets.contains([[1], ['a']], [['a']])");
        yes("sets.equivalent([1, 2, 2], [2, 1]) && !sets.equivalent([1], [1, 3])");
        yes(
            "sets.intersects([1, 2], [3, 2]) && !sets.intersects([1], []) && !sets.intersects(['a'], ['b'])",
        );
    }
}
