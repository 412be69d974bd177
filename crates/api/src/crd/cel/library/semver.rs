//! Upstream's semver library: `semver()`, `isSemver()` (each with an optional
//! `normalize` flag), and `major`, `minor`, `patch`, `isGreaterThan`,
//! `isLessThan`, `compareTo` of a `kubernetes.Semver`. Parsing and precedence
//! follow blang/semver (which upstream uses), with its error messages.

use std::cmp::Ordering;

use cel::common::types::{BOOL_TYPE, STRING_TYPE};
use cel::{Env, ExecutionError, Value};

use super::{Args, Ret, arg, boolean, custom, fail, int, library_type, str_arg};

#[derive(Debug, Clone)]
pub(super) struct Semver {
    core: [u64; 3],
    pre: Vec<String>,
}

library_type!(Semver, SEMVER, "kubernetes.Semver");

impl PartialEq for Semver {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Semver {
    /// Semver precedence; build metadata does not count.
    fn cmp(&self, other: &Self) -> Ordering {
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

fn numeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn alphanumeric(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// blang/semver's `Parse`.
fn parse(s: &str) -> Result<Semver, String> {
    if s.is_empty() {
        return Err("Version string empty".into());
    }
    let parts: Vec<&str> = s.splitn(3, '.').collect();
    let [major, minor, rest] = parts[..] else {
        return Err("No Major.Minor.Patch elements found".into());
    };
    let (rest, build) = match rest.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (rest, None),
    };
    let (patch, pre) = match rest.split_once('-') {
        Some((p, pre)) => (p, Some(pre)),
        None => (rest, None),
    };
    let mut core = [0; 3];
    for (i, (name, n)) in [("major", major), ("minor", minor), ("patch", patch)]
        .into_iter()
        .enumerate()
    {
        if !numeric(n) {
            return Err(format!("Invalid character(s) found in {name} number {n:?}"));
        }
        if n.len() > 1 && n.starts_with('0') {
            let name = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
            return Err(format!(
                "{name} number must not contain leading zeroes {n:?}"
            ));
        }
        core[i] = n
            .parse()
            .map_err(|_| format!("strconv.ParseUint: parsing {n:?}: invalid syntax"))?;
    }
    let mut prerelease = Vec::new();
    for p in pre
        .map(|p| p.split('.').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if p.is_empty() {
            return Err("Prerelease is empty".into());
        }
        if numeric(p) && p.len() > 1 && p.starts_with('0') {
            return Err(format!(
                "Numeric PreRelease version must not contain leading zeroes {p:?}"
            ));
        }
        if !alphanumeric(p) {
            return Err(format!("Invalid character(s) found in prerelease {p:?}"));
        }
        prerelease.push(p.to_string());
    }
    for b in build
        .map(|b| b.split('.').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if b.is_empty() {
            return Err("Build meta data is empty".into());
        }
        if !alphanumeric(b) {
            return Err(format!(
                "Invalid character(s) found in build meta data {b:?}"
            ));
        }
    }
    Ok(Semver {
        core,
        pre: prerelease,
    })
}

/// upstream's `normalizeAndParse`: no `v` prefix, missing minor and patch
/// added, leading zeros removed.
fn normalize_and_parse(s: &str) -> Result<Semver, String> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts: Vec<String> = s
        .splitn(3, '.')
        .map(|p| {
            if p.len() <= 1 {
                return p.to_string();
            }
            let t = p.trim_start_matches('0');
            if t.starts_with(|c: char| c.is_ascii_digit()) {
                t.to_string()
            } else {
                format!("0{t}")
            }
        })
        .collect();
    if parts.len() < 3 {
        if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
            return Err("short version cannot contain PreRelease/Build meta data".into());
        }
        parts.resize(3, "0".into());
    }
    parse(&parts.join("."))
}

fn parsed(args: &Args<'_, '_>) -> Result<Result<Semver, String>, ExecutionError> {
    let s = str_arg(args, 0)?;
    let normalize = match args.get(1).map(|a| Value::try_from(a.as_ref())) {
        Some(Ok(Value::Bool(b))) => b,
        _ => false,
    };
    Ok(if normalize {
        normalize_and_parse(&s)
    } else {
        parse(&s)
    })
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let t = || Semver::TYPE;
    env.add_type(t())?;
    env.add_overload("semver", "string_to_semver", vec![STRING_TYPE], to_semver)?;
    env.add_overload(
        "semver",
        "string_bool_to_semver",
        vec![STRING_TYPE, BOOL_TYPE],
        to_semver,
    )?;
    env.add_overload("isSemver", "is_semver_string", vec![STRING_TYPE], is_semver)?;
    env.add_overload(
        "isSemver",
        "is_semver_string_bool",
        vec![STRING_TYPE, BOOL_TYPE],
        is_semver,
    )?;
    env.add_member_overload("major", "semver_major", t(), vec![], major)?;
    env.add_member_overload("minor", "semver_minor", t(), vec![], minor)?;
    env.add_member_overload("patch", "semver_patch", t(), vec![], patch)?;
    env.add_member_overload(
        "isGreaterThan",
        "semver_is_greater_than",
        t(),
        vec![t()],
        greater,
    )?;
    env.add_member_overload("isLessThan", "semver_is_less_than", t(), vec![t()], less)?;
    env.add_member_overload("compareTo", "semver_compare_to", t(), vec![t()], compare_to)?;
    Ok(())
}

fn to_semver<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(parsed(&args)?.map_err(fail)?)
}

fn is_semver<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(parsed(&args)?.is_ok())
}

fn part<'b, 'v>(args: Args<'b, 'v>, i: usize) -> Ret<'b, 'v> {
    let n = arg::<Semver>(&args, 0)?.core[i];
    int(i64::try_from(n).map_err(|_| ExecutionError::Overflow("semver", n.into(), 0.into()))?)
}

fn major<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    part(args, 0)
}

fn minor<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    part(args, 1)
}

fn patch<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    part(args, 2)
}

fn order(args: &Args<'_, '_>) -> Result<Ordering, ExecutionError> {
    Ok(arg::<Semver>(args, 0)?.cmp(arg::<Semver>(args, 1)?))
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

#[cfg(test)]
mod tests {
    use super::super::{eval_err, yes};

    #[test]
    fn parses_as_blang_semver_does() {
        yes("isSemver('1.0.0') && isSemver('0.1.0-alpha.1+build.5') && !isSemver('hello')");
        yes("!isSemver('v1.0') && isSemver('v1.0', true) && isSemver('01.01.01', true)");
        yes(
            "!isSemver('1.0') && !isSemver('01.0.0') && !isSemver('1.0.0-01') && !isSemver('1.0', false)",
        );
        yes(
            "semver('v1.0', true) == semver('1.0.0') && semver('01.01.01', true) == semver('1.1.1')",
        );
        assert_eq!(
            eval_err("semver('Three')"),
            "No Major.Minor.Patch elements found"
        );
        assert_eq!(
            eval_err("semver('1.02.3')"),
            r#"Minor number must not contain leading zeroes "02""#
        );
        assert_eq!(
            eval_err("semver('1.0-rc', true)"),
            "short version cannot contain PreRelease/Build meta data"
        );
    }

    #[test]
    fn parts_and_precedence() {
        yes(
            "semver('1.2.3').major() == 1 && semver('1.2.3').minor() == 2 && semver('1.2.3').patch() == 3",
        );
        yes(
            "semver('1.2.3').compareTo(semver('1.2.3')) == 0 && semver('1.2.3').compareTo(semver('2.0.0')) == -1",
        );
        yes(
            "semver('1.2.3').compareTo(semver('0.1.2')) == 1 && semver('1.0.0').isGreaterThan(semver('1.0.0-rc.1'))",
        );
        yes(
            "semver('1.0.0-alpha').isLessThan(semver('1.0.0-alpha.1')) && semver('1.0.0-alpha.2').isLessThan(semver('1.0.0-alpha.10'))",
        );
        yes(
            "semver('1.0.0-2').isLessThan(semver('1.0.0-a')) && semver('1.0.0+a') == semver('1.0.0+b')",
        );
    }
}
