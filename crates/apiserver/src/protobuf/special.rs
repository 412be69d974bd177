//! Messages whose JSON form is not an object of their fields.

use serde_json::Value;

use super::decode::message;
use super::wire::{self, Raw};
use super::{DResult, Error, MAGIC, decode_envelope, lookup};

// Lower case: names are compared without case.
const META: &str = "apimachinery.pkg.apis.meta.v1.";
const APIEXT: &str = "apiextensions_apiserver.pkg.apis.apiextensions.";

/// The JSON of a special message, or None for an ordinary one.
pub(super) fn decode(name: &str, buf: &[u8], depth: usize) -> DResult<Option<Value>> {
    // k8s-pb spells acronyms in CamelCase (`JsonSchemaProps`); compare without case.
    let lname = name.to_ascii_lowercase();
    let v = match lname.as_str() {
        "apimachinery.pkg.util.intstr.intorstring" => int_or_string(buf)?,
        "apimachinery.pkg.api.resource.quantity"
        | "apimachinery.pkg.api.resource.quantityvalue" => {
            let s = string(buf, 1)?;
            Value::String(if s.is_empty() { "0".into() } else { s })
        }
        "apimachinery.pkg.runtime.rawextension" => raw_json(buf, depth)?,
        _ => match lname.strip_prefix(META) {
            Some("time") => time(buf, false)?,
            Some("microtime") => time(buf, true)?,
            Some("duration") => Value::String(go_duration(varint(buf, 1)? as i64)),
            Some("fieldsv1") => raw_json(buf, depth)?,
            Some("verbs") => strings(buf)?,
            _ if lname.ends_with(".extravalue") => strings(buf)?,
            _ => match lname.strip_prefix(APIEXT).and_then(|n| n.split_once('.')) {
                Some((_, "json")) => raw_json(buf, depth)?,
                Some((version, "jsonschemapropsorarray")) => {
                    // {1: schema, 2: repeated JSONSchemas}: an array when there are several.
                    let props = props_message(version)?;
                    let mut schema = None;
                    let mut many = Vec::new();
                    for (tag, v) in wire::fields(buf)? {
                        match (tag, v) {
                            (1, Raw::Bytes(b)) => schema = Some(message(props, b, depth + 1)?),
                            (2, Raw::Bytes(b)) => many.push(message(props, b, depth + 1)?),
                            _ => {}
                        }
                    }
                    if many.is_empty() {
                        schema.unwrap_or(Value::Null)
                    } else {
                        Value::Array(many)
                    }
                }
                Some((version, "jsonschemapropsorbool")) => {
                    // {1: allows, 2: schema}: the schema when there is one, else the bool.
                    let props = props_message(version)?;
                    let mut allows = false;
                    let mut schema = None;
                    for (tag, v) in wire::fields(buf)? {
                        match (tag, v) {
                            (1, Raw::Varint(b)) => allows = b != 0,
                            (2, Raw::Bytes(b)) => schema = Some(message(props, b, depth + 1)?),
                            _ => {}
                        }
                    }
                    schema.unwrap_or(Value::Bool(allows))
                }
                Some((version, "jsonschemapropsorstringarray")) => {
                    // {1: schema, 2: repeated property}: the strings when there are any.
                    let props = props_message(version)?;
                    let mut schema = None;
                    let mut names = Vec::new();
                    for (tag, v) in wire::fields(buf)? {
                        match (tag, v) {
                            (1, Raw::Bytes(b)) => schema = Some(message(props, b, depth + 1)?),
                            (2, Raw::Bytes(b)) => names.push(Value::String(utf8(b)?)),
                            _ => {}
                        }
                    }
                    if names.is_empty() {
                        schema.unwrap_or(Value::Null)
                    } else {
                        Value::Array(names)
                    }
                }
                _ => return Ok(None),
            },
        },
    };
    Ok(Some(v))
}

fn props_message(version: &str) -> DResult<usize> {
    lookup(&format!("{APIEXT}{version}.JSONSchemaProps"))
        .ok_or_else(|| Error::Malformed("JSONSchemaProps is not in the table".into()))
}

fn utf8(b: &[u8]) -> DResult<String> {
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| Error::Malformed("a string is not UTF-8".into()))
}

/// The last value of string field `tag`, or "".
fn string(buf: &[u8], tag: u32) -> DResult<String> {
    let mut out = String::new();
    for (t, v) in wire::fields(buf)? {
        if let (true, Raw::Bytes(b)) = (t == tag, v) {
            out = utf8(b)?;
        }
    }
    Ok(out)
}

/// The last value of varint field `tag`, or 0.
fn varint(buf: &[u8], tag: u32) -> DResult<u64> {
    let mut out = 0;
    for (t, v) in wire::fields(buf)? {
        if let (true, Raw::Varint(n)) = (t == tag, v) {
            out = n;
        }
    }
    Ok(out)
}

/// A wrapper of `repeated string items = 1` whose JSON is the plain array.
fn strings(buf: &[u8]) -> DResult<Value> {
    let mut out = Vec::new();
    for (t, v) in wire::fields(buf)? {
        if let (1, Raw::Bytes(b)) = (t, v) {
            out.push(Value::String(utf8(b)?));
        }
    }
    Ok(Value::Array(out))
}

/// {1: type (0 int, 1 string), 2: intVal, 3: strVal}.
fn int_or_string(buf: &[u8]) -> DResult<Value> {
    let (mut ty, mut int, mut s) = (0, 0i32, String::new());
    for (t, v) in wire::fields(buf)? {
        match (t, v) {
            (1, Raw::Varint(n)) => ty = n,
            (2, Raw::Varint(n)) => int = n as i32,
            (3, Raw::Bytes(b)) => s = utf8(b)?,
            _ => {}
        }
    }
    Ok(if ty == 1 {
        Value::String(s)
    } else {
        Value::from(int)
    })
}

/// `Time`/`MicroTime` {1: seconds, 2: nanos}. Go writes nothing for the zero time,
/// whose JSON is null. Time is RFC 3339 in seconds; MicroTime has 6 fractional digits.
fn time(buf: &[u8], micro: bool) -> DResult<Value> {
    if buf.is_empty() {
        return Ok(Value::Null);
    }
    let (mut secs, mut nanos) = (0i64, 0i32);
    for (t, v) in wire::fields(buf)? {
        match (t, v) {
            (1, Raw::Varint(n)) => secs = n as i64,
            (2, Raw::Varint(n)) => nanos = n as i32,
            _ => {}
        }
    }
    // Go's zero time.Time, Unix seconds of 0001-01-01T00:00:00Z.
    if secs == -62_135_596_800 && nanos == 0 {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::from_second(secs)
        .map_err(|e| Error::Malformed(format!("time out of range: {e}")))?;
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Value::String(if micro {
        let micros = nanos.clamp(0, 999_999_999) / 1000;
        format!("{base}.{micros:06}Z")
    } else {
        format!("{base}Z")
    }))
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
pub(super) fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let frac = frac(&mut u, prec);
        out = format!("{u}{frac}{unit}");
    } else {
        let frac = frac(&mut u, 9);
        let secs = u % 60;
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&format!("{secs}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits off the last `prec` decimal digits of `v` as ".ddd" without trailing zeros.
fn frac(v: &mut u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let f = *v % p;
    *v /= p;
    if f == 0 {
        return String::new();
    }
    let digits = format!("{f:0width$}", width = prec as usize);
    format!(".{}", digits.trim_end_matches('0'))
}

/// {1: raw bytes}: embedded JSON (or an embedded protobuf object), null when empty.
fn raw_json(buf: &[u8], depth: usize) -> DResult<Value> {
    let mut raw: &[u8] = &[];
    for (t, v) in wire::fields(buf)? {
        if let (1, Raw::Bytes(b)) = (t, v) {
            raw = b;
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        return decode_envelope(raw, depth + 1);
    }
    serde_json::from_slice(raw)
        .map_err(|e| Error::Malformed(format!("embedded raw object is not JSON: {e}")))
}
