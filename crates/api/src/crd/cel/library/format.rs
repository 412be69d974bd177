//! Upstream's format library: `format.named(name)` (an optional) and
//! `format.<name>()`, whose `validate(s)` is `optional.none()` for a valid string
//! and the list of upstream's messages otherwise. The name checks reuse the API
//! crate's (`strategies::names`, label keys and values); `uuid`, `byte`, `date`
//! and `datetime` follow kube-openapi's formats, `datetime` accepting RFC 3339
//! and the ISO 8601 forms it lists.

use std::sync::{Arc, LazyLock};

use cel::common::types::{CelOptional, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{Env, Value};

use super::{Args, Ret, arg, custom, library_type, str_arg};
use crate::selectors::validate::{label_key_errors, label_value_errors};
use crate::strategies::names::{dns1035_label, dns1123_label, dns1123_subdomain};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Format(&'static str);

library_type!(Format, FORMAT, "kubernetes.NamedFormat");

const NAMES: [&str; 13] = [
    "dns1123Label",
    "dns1123Subdomain",
    "dns1035Label",
    "qualifiedName",
    "dns1123LabelPrefix",
    "dns1123SubdomainPrefix",
    "dns1035LabelPrefix",
    "labelValue",
    "uri",
    "uuid",
    "byte",
    "date",
    "datetime",
];

/// upstream's `maskTrailingDash`: a prefix may end in `-` (and loses the
/// character before it, as upstream's does).
fn mask_trailing_dash(s: &str) -> String {
    match s.strip_suffix('-') {
        Some(_) if s.len() > 1 => format!("{}a", &s[..s.len() - 2]),
        _ => s.to_string(),
    }
}

static UUID: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new("(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
        .expect("uuid pattern")
});
static DATETIME: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$",
    )
    .expect("datetime pattern")
});

fn date_ok(s: &str) -> bool {
    s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok()
}

fn datetime_ok(s: &str) -> bool {
    let Some(c) = DATETIME.captures(s) else {
        return false;
    };
    let num = |i: usize| {
        c.get(i)
            .map_or(0, |m| m.as_str().parse::<u32>().unwrap_or(99))
    };
    date_ok(&c[1]) && num(2) < 24 && num(3) < 60 && num(5) < 60
}

/// Go's `base64.StdEncoding`: padded, standard alphabet.
fn base64_ok(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn check(format: &str, s: &str) -> Vec<String> {
    let one = |ok: bool, msg: &str| if ok { vec![] } else { vec![msg.to_string()] };
    match format {
        "dns1123Label" => dns1123_label(s),
        "dns1123Subdomain" => dns1123_subdomain(s),
        "dns1035Label" => dns1035_label(s),
        "qualifiedName" => label_key_errors(s),
        "dns1123LabelPrefix" => dns1123_label(&mask_trailing_dash(s)),
        "dns1123SubdomainPrefix" => dns1123_subdomain(&mask_trailing_dash(s)),
        "dns1035LabelPrefix" => dns1035_label(&mask_trailing_dash(s)),
        "labelValue" => label_value_errors(s),
        "uri" => match super::url::parse(s, true) {
            Ok(_) => vec![],
            Err(e) => vec![format!("parse {s:?}: {e}")],
        },
        "uuid" => one(UUID.is_match(s), "does not match the UUID format"),
        "byte" => one(base64_ok(s), "invalid base64"),
        "date" => one(date_ok(s), "invalid date"),
        _ => one(datetime_ok(s), "invalid datetime"),
    }
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(Format::TYPE)?;
    env.add_overload("format.named", "format-named", vec![STRING_TYPE], named)?;
    env.add_member_overload(
        "validate",
        "format-validate",
        Format::TYPE,
        vec![STRING_TYPE],
        validate,
    )?;
    let constants: [super::Predicate; 13] = [
        |_| custom(Format(NAMES[0])),
        |_| custom(Format(NAMES[1])),
        |_| custom(Format(NAMES[2])),
        |_| custom(Format(NAMES[3])),
        |_| custom(Format(NAMES[4])),
        |_| custom(Format(NAMES[5])),
        |_| custom(Format(NAMES[6])),
        |_| custom(Format(NAMES[7])),
        |_| custom(Format(NAMES[8])),
        |_| custom(Format(NAMES[9])),
        |_| custom(Format(NAMES[10])),
        |_| custom(Format(NAMES[11])),
        |_| custom(Format(NAMES[12])),
    ];
    for (name, f) in NAMES.iter().zip(constants) {
        let full = format!("format.{name}");
        env.add_overload(&full, &full, vec![], f)?;
    }
    Ok(())
}

fn optional<'b, 'v>(v: Option<Box<dyn Val + 'v>>) -> Ret<'b, 'v> {
    let opt = match v {
        Some(v) => CelOptional::of(v),
        None => CelOptional::none(),
    };
    Ok(CowVal::Owned(Box::new(opt)))
}

fn named<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let name = str_arg(&args, 0)?;
    let found = NAMES.iter().find(|n| **n == name);
    optional(found.map(|n| Box::new(Format(n)) as Box<dyn Val>))
}

fn validate<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let errs = check(arg::<Format>(&args, 0)?.0, &str_arg(&args, 1)?);
    if errs.is_empty() {
        return optional(None);
    }
    let list = Value::List(Arc::new(
        errs.into_iter()
            .map(|e| Value::String(Arc::new(e)))
            .collect(),
    ));
    optional(Some(list.try_into()?))
}

#[cfg(test)]
mod tests {
    use super::super::yes;

    #[test]
    fn named_formats_validate() {
        yes("!format.dns1123Label().validate('my-name').hasValue()");
        yes("format.dns1123Label().validate('My_Name').hasValue()");
        yes(
            "format.named('dns1123Subdomain').value().validate('apiextensions.k8s.io') == optional.none()",
        );
        yes("!format.named('nope').hasValue() && format.named('uuid').hasValue()");
        yes(
            "!format.dns1035Label().validate('abc-123').hasValue() && format.dns1035Label().validate('1abc').hasValue()",
        );
        yes("!format.dns1123LabelPrefix().validate('my-label-prefix-').hasValue()");
        yes("!format.qualifiedName().validate('apiextensions.k8s.io/v1beta1').hasValue()");
        yes(
            "!format.labelValue().validate('').hasValue() && format.labelValue().validate('a b').hasValue()",
        );
        yes("!format.uri().validate('http://example.com').hasValue()");
        yes("format.uri().validate('../x').value() == ['parse \"../x\": invalid URI for request']");
        yes("!format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()");
        yes("format.uuid().validate('123').value() == ['does not match the UUID format']");
        yes(
            "!format.byte().validate('aGVsbG8=').hasValue() && format.byte().validate('aGVsbG8').hasValue()",
        );
        yes(
            "!format.date().validate('2021-01-01').hasValue() && format.date().validate('2021-02-30').hasValue()",
        );
        yes("!format.datetime().validate('2021-01-01T00:00:00Z').hasValue()");
        yes("!format.datetime().validate('2021-01-01T10:00:00.5+02:00').hasValue()");
        yes("format.datetime().validate('2021-01-01T25:00:00Z').value() == ['invalid datetime']");
    }

    #[test]
    fn label_errors_are_upstreams() {
        yes(
            "format.dns1123Label().validate('A').value()[0].startsWith('a lowercase RFC 1123 label must consist of')",
        );
    }
}
