//! Upstream's quantity library: `quantity()`, `isQuantity()` and the methods of a
//! `kubernetes.Quantity`. Amounts are held in nano units (the precision upstream's
//! parser rounds to), parsed by the API crate's quantity parser; amounts beyond
//! its range (about 1.7e20) are held as a float, so arithmetic and comparisons
//! on them are approximate where upstream's are exact.

use std::cmp::Ordering;

use cel::common::types::{INT_TYPE, STRING_TYPE};
use cel::{Env, ExecutionError};

use super::{Args, Ret, arg, boolean, custom, fail, int, int_arg, library_type, owned, str_arg};
use crate::strategies::quantity::parse_nanos;

const NANO: i128 = 1_000_000_000;
const FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const SUFFIX: &str = "unable to parse quantity's suffix";

#[derive(Debug, Clone, Copy)]
pub(super) enum Quantity {
    Nanos(i128),
    Huge(f64),
}

library_type!(Quantity, QUANTITY, "kubernetes.Quantity");

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Quantity {
    fn float(self) -> f64 {
        match self {
            Quantity::Nanos(n) => n as f64 / NANO as f64,
            Quantity::Huge(f) => f,
        }
    }

    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Quantity::Nanos(a), Quantity::Nanos(b)) => a.cmp(b),
            _ => self
                .float()
                .partial_cmp(&other.float())
                .unwrap_or(Ordering::Equal),
        }
    }

    fn integer(self) -> Option<i64> {
        match self {
            Quantity::Nanos(n) if n % NANO == 0 => i64::try_from(n / NANO).ok(),
            _ => None,
        }
    }

    fn plus(self, other: Quantity) -> Quantity {
        match (self, other) {
            (Quantity::Nanos(a), Quantity::Nanos(b)) => a.checked_add(b).map_or(
                Quantity::Huge(self.float() + other.float()),
                Quantity::Nanos,
            ),
            _ => Quantity::Huge(self.float() + other.float()),
        }
    }

    fn negated(self) -> Quantity {
        match self {
            Quantity::Nanos(n) => Quantity::Nanos(-n),
            Quantity::Huge(f) => Quantity::Huge(-f),
        }
    }
}

/// `resource.ParseQuantity`: the same accepted forms and error messages.
pub(super) fn parse(s: &str) -> Result<Quantity, &'static str> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(split);
    let suffix_ok = {
        let letters = suffix.trim_start_matches(|c: char| "eEinumkKMGTP".contains(c));
        let digits = letters.strip_prefix(['+', '-']).unwrap_or(letters);
        digits.chars().all(|c| c.is_ascii_digit())
    };
    if number.is_empty() || number.matches('.').count() > 1 || number == "." || !suffix_ok {
        return Err(FORMAT);
    }
    let factor = multiplier(suffix).ok_or(SUFFIX)?;
    if let Some(n) = parse_nanos(s) {
        return Ok(Quantity::Nanos(n));
    }
    // Beyond the nano range: keep the magnitude.
    let value: f64 = number.parse().map_err(|_| FORMAT)?;
    let sign = if s.starts_with('-') { -1.0 } else { 1.0 };
    Ok(Quantity::Huge(sign * value * factor))
}

/// The value of a suffix, `None` for one upstream does not know (`K`, `e`).
fn multiplier(suffix: &str) -> Option<f64> {
    let binary = |p: i32| 1024f64.powi(p);
    Some(match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        exp if exp.len() > 1 && exp.starts_with(['e', 'E']) => {
            10f64.powi(exp[1..].parse::<i32>().ok()?)
        }
        _ => return None,
    })
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(Quantity::TYPE)?;
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        to_quantity,
    )?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    env.add_member_overload("sign", "quantity_sign", Quantity::TYPE, vec![], sign)?;
    env.add_member_overload(
        "isInteger",
        "quantity_is_integer",
        Quantity::TYPE,
        vec![],
        is_integer,
    )?;
    env.add_member_overload(
        "asInteger",
        "quantity_get_int",
        Quantity::TYPE,
        vec![],
        as_integer,
    )?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_get_float",
        Quantity::TYPE,
        vec![],
        as_float,
    )?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_is_greater_than",
        Quantity::TYPE,
        vec![Quantity::TYPE],
        greater,
    )?;
    env.add_member_overload(
        "isLessThan",
        "quantity_is_less_than",
        Quantity::TYPE,
        vec![Quantity::TYPE],
        less,
    )?;
    env.add_member_overload(
        "compareTo",
        "quantity_compare_to",
        Quantity::TYPE,
        vec![Quantity::TYPE],
        compare_to,
    )?;
    env.add_member_overload(
        "add",
        "quantity_add",
        Quantity::TYPE,
        vec![Quantity::TYPE],
        add,
    )?;
    env.add_member_overload(
        "add",
        "quantity_add_int",
        Quantity::TYPE,
        vec![INT_TYPE],
        add,
    )?;
    env.add_member_overload(
        "sub",
        "quantity_sub",
        Quantity::TYPE,
        vec![Quantity::TYPE],
        sub,
    )?;
    env.add_member_overload(
        "sub",
        "quantity_sub_int",
        Quantity::TYPE,
        vec![INT_TYPE],
        sub,
    )?;
    Ok(())
}

fn to_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(parse(&str_arg(&args, 0)?).map_err(fail)?)
}

fn is_quantity<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(parse(&str_arg(&args, 0)?).is_ok())
}

fn this(args: &Args<'_, '_>) -> Result<Quantity, ExecutionError> {
    arg::<Quantity>(args, 0).copied()
}

/// The operand: a quantity, or an int (`add(20)`).
fn operand(args: &Args<'_, '_>) -> Result<Quantity, ExecutionError> {
    match arg::<Quantity>(args, 1) {
        Ok(q) => Ok(*q),
        Err(_) => Ok(Quantity::Nanos(i128::from(int_arg(args, 1)?) * NANO)),
    }
}

fn sign<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = match this(&args)? {
        Quantity::Nanos(n) => n.signum() as i64,
        Quantity::Huge(f) => f.signum() as i64,
    };
    int(s)
}

fn is_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(this(&args)?.integer().is_some())
}

fn as_integer<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let i = this(&args)?.integer();
    int(i.ok_or_else(|| fail("cannot convert value to integer"))?)
}

fn as_float<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    owned(cel::Value::Float(this(&args)?.float()))
}

fn order(args: &Args<'_, '_>) -> Result<Ordering, ExecutionError> {
    Ok(this(args)?.cmp(arg::<Quantity>(args, 1)?))
}

fn greater<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(order(&args)? == Ordering::Greater)
}

fn less<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(order(&args)? == Ordering::Less)
}

fn compare_to<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    int(order(&args)? as i64)
}

fn add<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(this(&args)?.plus(operand(&args)?))
}

fn sub<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(this(&args)?.plus(operand(&args)?.negated()))
}

#[cfg(test)]
mod tests {
    use super::super::{eval_err, yes};

    #[test]
    fn parses_as_upstream_does() {
        yes("isQuantity('1.3G') && isQuantity('1.3Gi') && isQuantity('10000k')");
        yes("!isQuantity('1,3G') && !isQuantity('200K') && !isQuantity('Three')");
        yes("!isQuantity('Mi') && !isQuantity('') && !isQuantity('1e') && isQuantity('1e3')");
        assert_eq!(
            eval_err("quantity('200K')"),
            "unable to parse quantity's suffix"
        );
        assert!(eval_err("quantity('Three')").starts_with("quantities must match"));
    }

    #[test]
    fn converts_to_scalars() {
        yes("quantity('50000000G').isInteger() && quantity('50k').isInteger()");
        yes("!quantity('9999999999999999999999999999999999999G').isInteger()");
        yes("!quantity('1m').isInteger() && quantity('50k').asInteger() == 50000");
        yes("quantity('50k').sub(20000).asApproximateFloat() == 30000.0");
        assert_eq!(
            eval_err("quantity('9999999999999999999999999999999999999G').asInteger()"),
            "cannot convert value to integer"
        );
    }

    #[test]
    fn arithmetic_and_comparisons() {
        yes("quantity('50k').add(quantity('20k')) == quantity('70k')");
        yes("quantity('50k').add(20) == quantity('50020')");
        yes("quantity('50k').sub(quantity('20k')) == quantity('30k')");
        yes("quantity('50k').add(20).sub(quantity('100k')).sub(-50000) == quantity('20')");
        yes("quantity('200M').compareTo(quantity('0.2G')) == 0");
        yes("quantity('50M').compareTo(quantity('50Mi')) == -1");
        yes("quantity('150Mi').isGreaterThan(quantity('100Mi'))");
        yes("quantity('50M').isLessThan(quantity('100M'))");
        yes(
            "quantity('-1').sign() == -1 && quantity('0').sign() == 0 && quantity('1m').sign() == 1",
        );
        yes("quantity('1') == quantity('1000m') && quantity('1') != quantity('1001m')");
    }
}
