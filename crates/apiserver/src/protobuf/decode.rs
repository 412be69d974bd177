//! The generic walker: one message's bytes to a JSON object, driven by the table.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::table::MESSAGES;
use super::table_types::{Field, Message, Mode, Ty};
use super::wire::{FIXED64, LEN, Reader, VARINT};
use super::{DResult, Error, MAX_DEPTH, special};

/// Decodes `MESSAGES[index]` from `buf`.
pub(super) fn message(index: usize, buf: &[u8], depth: usize) -> DResult<Value> {
    if depth > MAX_DEPTH {
        return Err(Error::Malformed(format!(
            "messages nested deeper than {MAX_DEPTH}"
        )));
    }
    let msg = &MESSAGES[index];
    if let Some(v) = special::decode(msg.name, buf, depth)? {
        return Ok(v);
    }
    object(msg, buf, depth)
}

fn object(msg: &Message, buf: &[u8], depth: usize) -> DResult<Value> {
    let mut out = Map::new();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        let Ok(i) = msg.fields.binary_search_by_key(&tag, |f| f.tag) else {
            r.skip(wire)?;
            continue;
        };
        let field = &msg.fields[i];
        let ctx = |e: String| Error::Malformed(format!("{}.{}: {e}", short(msg.name), field.json));
        match field.ty {
            Ty::MapS | Ty::MapB | Ty::MapM(_) => {
                if wire != LEN {
                    return Err(ctx(format!("wire type {wire} for a map entry")));
                }
                let entry = r.bytes()?;
                let (k, v) = map_entry(field.ty, entry, depth).map_err(|e| match e {
                    Error::Malformed(m) => ctx(m),
                    other => other,
                })?;
                let slot = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = slot {
                    m.insert(k, v);
                }
            }
            _ if field.mode == Mode::Repeated => {
                let slot = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    // Only an inlined field of the same name (hostile input) gets here.
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else {
                    return Err(ctx("not an array".into()));
                };
                if wire == LEN && packable(field.ty) {
                    let mut packed = Reader::new(r.bytes()?);
                    while !packed.done() {
                        items.push(scalar(field.ty, wire_of(field.ty), &mut packed).map_err(ctx)?);
                    }
                } else {
                    items.push(value(field, wire, &mut r, depth)?);
                }
            }
            _ if field.mode == Mode::Inline => {
                if let Value::Object(inner) = value(field, wire, &mut r, depth)? {
                    out.extend(inner);
                }
            }
            _ => {
                let v = value(field, wire, &mut r, depth)?;
                let unset = match field.mode {
                    Mode::Keep => false,
                    Mode::ZeroUnset => v == "" || v == false || v.as_f64() == Some(0.0),
                    _ => v == "",
                };
                if unset {
                    // A later occurrence overrides an earlier one, also with "unset".
                    out.remove(field.json);
                    continue;
                }
                out.insert(field.json.to_string(), v);
            }
        }
    }
    Ok(Value::Object(out))
}

/// `api.apps.v1.Deployment` -> `Deployment`, for error messages.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn packable(ty: Ty) -> bool {
    matches!(ty, Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64)
}

fn wire_of(ty: Ty) -> u8 {
    match ty {
        Ty::Bool | Ty::I32 | Ty::I64 => VARINT,
        Ty::F64 => FIXED64,
        _ => LEN,
    }
}

/// One value of a field (not a map entry).
fn value(field: &Field, wire: u8, r: &mut Reader<'_>, depth: usize) -> DResult<Value> {
    let ctx = |e: String| Error::Malformed(format!("{}: {e}", field.json));
    match field.ty {
        Ty::M(i) => {
            if wire != LEN {
                return Err(ctx(format!("wire type {wire} for a message")));
            }
            let b = r.bytes()?;
            message(usize::from(i), b, depth + 1)
        }
        ty => scalar(ty, wire, r).map_err(ctx),
    }
}

fn scalar(ty: Ty, wire: u8, r: &mut Reader<'_>) -> Result<Value, String> {
    let want = wire_of(ty);
    if wire != want {
        return Err(format!("wire type {wire}, expected {want}"));
    }
    Ok(match ty {
        Ty::S => Value::String(
            std::str::from_utf8(r.bytes()?)
                .map_err(|_| "a string is not UTF-8".to_string())?
                .to_string(),
        ),
        Ty::B => Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
        Ty::Bool => Value::Bool(r.varint()? != 0),
        // Negative int32s travel sign-extended to 64 bits; the low half is the value.
        Ty::I32 => Value::from(r.varint()? as i32),
        Ty::I64 => Value::from(r.varint()? as i64),
        Ty::F64 => float(f64::from_bits(r.fixed64()?))?,
        Ty::M(_) | Ty::MapS | Ty::MapB | Ty::MapM(_) => return Err("not a scalar".into()),
    })
}

fn float(f: f64) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{f} has no JSON form"))
}

/// A map entry message {1: key, 2: value}; a missing value is the type's zero.
fn map_entry(ty: Ty, buf: &[u8], depth: usize) -> DResult<(String, Value)> {
    let mut key = String::new();
    let mut val = None;
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        match (tag, ty) {
            (1, _) => {
                key = match scalar(Ty::S, wire, &mut r)? {
                    Value::String(s) => s,
                    _ => unreachable!("strings decode to strings"),
                }
            }
            (2, Ty::MapS) => val = Some(scalar(Ty::S, wire, &mut r)?),
            (2, Ty::MapB) => val = Some(scalar(Ty::B, wire, &mut r)?),
            (2, Ty::MapM(i)) => {
                if wire != LEN {
                    return Err(Error::Malformed(format!(
                        "wire type {wire} for a map value"
                    )));
                }
                val = Some(message(usize::from(i), r.bytes()?, depth + 1)?);
            }
            _ => r.skip(wire)?,
        }
    }
    let val = match (val, ty) {
        (Some(v), _) => v,
        (None, Ty::MapM(i)) => message(usize::from(i), &[], depth + 1)?,
        (None, _) => Value::String(String::new()),
    };
    Ok((key, val))
}
