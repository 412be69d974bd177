//! Strategic merge patch: like a JSON merge patch, but lists of objects with a merge
//! key (containers by `name`, ports by `containerPort` …) are merged item by item, and
//! the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList` and `$setElementOrder`
//! directives are honoured.

use serde_json::{Map, Value};

use api::ResourceInfo;

use crate::error::{ApiError, Result};

/// Merges `patch` into `current` for a resource of type `info`.
pub fn merge(info: &ResourceInfo, current: &Value, patch: &Value) -> Result<Value> {
    let keys = api::patch_meta::MergeKeys::for_resource(info);
    let mut out = current.clone();
    merge_value(&keys, &mut out, patch, "")?;
    Ok(out)
}

fn merge_value(
    keys: &api::patch_meta::MergeKeys,
    target: &mut Value,
    patch: &Value,
    path: &str,
) -> Result<()> {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => merge_map(keys, t, p, path),
        _ => {
            *target = strip_directives(patch);
            Ok(())
        }
    }
}

fn merge_map(
    keys: &api::patch_meta::MergeKeys,
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
) -> Result<()> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(&Value::Object(patch.clone()))
                .as_object()
                .cloned()
                .unwrap_or_default();
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some(other) if other != "merge" => {
            return Err(ApiError::bad_request(format!(
                "Unknown patch type: {other}"
            )));
        }
        _ => {}
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) = (target.get_mut(field), pv.as_array())
            {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if k.starts_with("$setElementOrder/") {
            continue;
        }
        let child = format!("{path}/{k}");
        if pv.is_null() {
            target.remove(k);
            continue;
        }
        match (target.get_mut(k), pv) {
            (Some(Value::Array(tl)), Value::Array(pl)) => {
                let order = patch
                    .get(&format!("$setElementOrder/{k}"))
                    .and_then(Value::as_array);
                merge_list(keys, tl, pl, &child, order)?;
            }
            (Some(tv @ Value::Object(_)), Value::Object(_)) => merge_value(keys, tv, pv, &child)?,
            _ => {
                target.insert(k.clone(), strip_directives(pv));
            }
        }
    }
    Ok(())
}

fn merge_list(
    keys: &api::patch_meta::MergeKeys,
    target: &mut Vec<Value>,
    patch: &[Value],
    path: &str,
    order: Option<&Vec<Value>>,
) -> Result<()> {
    // `[{"$patch": "replace"}, …]` replaces the whole list.
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    let Some(key) = keys.merge_key(path) else {
        if keys.is_merge_primitive_list(path) {
            for p in patch {
                if !target.contains(p) {
                    target.push(p.clone());
                }
            }
        } else {
            *target = patch.iter().map(strip_directives).collect();
        }
        return Ok(());
    };
    for p in patch {
        let Some(id) = p.get(key) else {
            return Err(ApiError::bad_request(format!(
                "map: {p} does not contain declared merge key: {key}"
            )));
        };
        let pos = target.iter().position(|t| t.get(key) == Some(id));
        let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                target.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => merge_value(keys, &mut target[i], p, path)?,
            (None, false) => target.push(strip_directives(p)),
        }
    }
    if let Some(order) = order {
        let rank = |v: &Value| {
            order
                .iter()
                .position(|o| o.get(key) == v.get(key))
                .unwrap_or(usize::MAX)
        };
        target.sort_by_key(rank);
    }
    Ok(())
}

/// A patch value as stored: directives removed, recursively.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}
