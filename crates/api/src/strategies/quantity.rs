//! Just enough of `resource.Quantity` to compare amounts: `500m`, `1Gi`, `1e3`, `0.5`.

use serde_json::Value;

/// The amount in billionths (nano units), rounded up; `None` when malformed or too big.
pub fn parse_nanos(s: &str) -> Option<i128> {
    let s = s.trim();
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(num_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits: i128 = format!("{whole}{frac}").parse().ok()?;
    // value = digits / 10^frac_len * num / den
    let (mut num, mut den): (i128, i128) = (1_000_000_000, 10i128.checked_pow(frac.len() as u32)?);
    let binary = |p: u32| 1i128 << (10 * p);
    match suffix {
        "" => {}
        "n" => den = den.checked_mul(1_000_000_000)?,
        "u" => den = den.checked_mul(1_000_000)?,
        "m" => den = den.checked_mul(1_000)?,
        "k" => num = num.checked_mul(1_000)?,
        "M" => num = num.checked_mul(1_000_000)?,
        "G" => num = num.checked_mul(1_000_000_000)?,
        "T" => num = num.checked_mul(10i128.pow(12))?,
        "P" => num = num.checked_mul(10i128.pow(15))?,
        "E" => num = num.checked_mul(10i128.pow(18))?,
        "Ki" => num = num.checked_mul(binary(1))?,
        "Mi" => num = num.checked_mul(binary(2))?,
        "Gi" => num = num.checked_mul(binary(3))?,
        "Ti" => num = num.checked_mul(binary(4))?,
        "Pi" => num = num.checked_mul(binary(5))?,
        "Ei" => num = num.checked_mul(binary(6))?,
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            if e >= 0 {
                num = num.checked_mul(10i128.checked_pow(e as u32)?)?;
            } else {
                den = den.checked_mul(10i128.checked_pow(e.unsigned_abs())?)?;
            }
        }
        _ => return None,
    }
    let total = digits.checked_mul(num)?;
    let value = (total + den - 1) / den;
    Some(sign * value)
}

/// A quantity held as JSON (a string, or a bare number from a lenient client).
pub fn nanos_of(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_nanos(s),
        Value::Number(n) => parse_nanos(&n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!(parse_nanos("1"), parse_nanos("1000m"));
        assert_eq!(parse_nanos("0.5"), parse_nanos("500m"));
        assert_eq!(parse_nanos("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(parse_nanos("1e3"), parse_nanos("1k"));
        assert_eq!(parse_nanos("1Gi"), parse_nanos("1073741824"));
        assert!(parse_nanos("1x").is_none());
        assert!(parse_nanos("").is_none());
        assert_eq!(parse_nanos("0"), Some(0));
    }
}
