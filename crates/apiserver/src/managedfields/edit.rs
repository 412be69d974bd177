//! Editing objects by schema: merging an applied configuration into the live object
//! and removing the nodes at field paths.

use serde_json::Value;

use super::set::Elem;
use super::walk::{ListKind, Schema, item_elems};

/// Merges an applied configuration into the live object: maps field by field, keyed
/// lists item by item, sets as unions, everything else replaced. A `null` in the
/// configuration removes the field.
pub fn merge(schema: &Schema, live: &Value, config: &Value) -> Value {
    merge_at(schema, live, config, "")
}

fn merge_at(schema: &Schema, live: &Value, config: &Value, ptr: &str) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !schema.atomic_object(ptr) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge_at(schema, lv, cv, &format!("{ptr}/{k}")),
                    None => strip_nulls(cv),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(la), Value::Array(ca)) => {
            let kind = schema.list_kind(ptr);
            let (Some(le), Some(ce)) = (item_elems(&kind, la), item_elems(&kind, ca)) else {
                return strip_nulls(config);
            };
            let mut out: Vec<Value> = Vec::with_capacity(la.len() + ca.len());
            for (i, e) in le.iter().enumerate() {
                match ce.iter().position(|x| x == e) {
                    Some(j) if kind != ListKind::Set => {
                        out.push(merge_at(schema, &la[i], &ca[j], ptr));
                    }
                    _ => out.push(la[i].clone()),
                }
            }
            for (j, e) in ce.iter().enumerate() {
                if !le.contains(e) {
                    out.push(strip_nulls(&ca[j]));
                }
            }
            Value::Array(out)
        }
        _ => strip_nulls(config),
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// Removes the node at `path` from `obj`; false when it is not there.
pub fn remove_path(schema: &Schema, obj: &mut Value, path: &[Elem]) -> bool {
    fn go(schema: &Schema, v: &mut Value, path: &[Elem], ptr: &str) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match (first, v) {
            (Elem::Field(f), Value::Object(m)) => {
                if rest.is_empty() {
                    return m.shift_remove(f).is_some();
                }
                match m.get_mut(f) {
                    Some(c) => go(schema, c, rest, &format!("{ptr}/{f}")),
                    None => false,
                }
            }
            (e, Value::Array(items)) => {
                let pos = match e {
                    Elem::Index(i) => Some(*i).filter(|i| *i < items.len()),
                    _ => item_elems(&schema.list_kind(ptr), items)
                        .and_then(|elems| elems.iter().position(|x| x == e)),
                };
                let Some(pos) = pos else { return false };
                if rest.is_empty() {
                    items.remove(pos);
                    return true;
                }
                go(schema, &mut items[pos], rest, ptr)
            }
            _ => false,
        }
    }
    go(schema, obj, path, "")
}

/// The node at `path`, if any.
pub fn get_path<'a>(schema: &Schema, obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut v = obj;
    let mut ptr = String::new();
    for e in path {
        v = match (e, v) {
            (Elem::Field(f), Value::Object(m)) => {
                ptr.push('/');
                ptr.push_str(f);
                m.get(f)?
            }
            (Elem::Index(i), Value::Array(a)) => a.get(*i)?,
            (e, Value::Array(a)) => {
                let elems = item_elems(&schema.list_kind(&ptr), a)?;
                &a[elems.iter().position(|x| x == e)?]
            }
            _ => return None,
        };
    }
    Some(v)
}
