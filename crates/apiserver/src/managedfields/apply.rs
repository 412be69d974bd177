//! Server-side apply on a live object (upstream's structured-merge-diff `Updater.Apply`
//! wrapped by the fieldmanager's last-applied handling): merge the configuration,
//! remove what the manager stopped applying, refuse changes to fields other managers
//! own unless forced, and record the manager's new field set.

use serde_json::{Value, json};

use api::{ResourceInfo, meta};

use super::edit;
use super::entries::{APPLY, Entry, Managers};
use super::set::{Elem, FieldSet, Path, show_path};
use super::walk::{self, Schema};
use super::{Scope, strip};
use crate::error::ApiError;

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Who applies, and how.
pub struct Request<'a> {
    pub info: &'a ResourceInfo,
    pub manager: &'a str,
    /// "" for the main resource.
    pub subresource: &'a str,
    pub force: bool,
}

/// Applies `config` to `live` (`None` when the object does not exist yet). Returns
/// the new object with its managedFields, or `None` when nothing changes.
pub fn apply(
    req: &Request,
    live: Option<&Value>,
    config: &Value,
) -> Result<Option<Value>, ApiError> {
    let schema = Schema::for_resource(req.info);
    let scope = Scope::of(req.info, req.subresource);
    let empty = json!({});
    let live = live.unwrap_or(&empty);
    let mut managers = Managers::decode_or_empty(live);
    let before = managers.clone();
    let config_set = scope.filter(walk::field_set(&schema, &strip(config)));

    let mut merged = edit::merge(&schema, live, config);
    let mine = managers.position(req.manager, APPLY, "", req.subresource);
    let others: FieldSet = managers
        .0
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != mine)
        .fold(FieldSet::new(), |acc, (_, e)| acc.union(&e.set));
    if let Some(i) = mine {
        let last = managers.0[i].set.clone();
        prune(&schema, &mut merged, &last, &config_set, &others);
    }

    let cmp = walk::compare(&schema, &strip(live), &strip(&merged));
    let changed = scope.filter(cmp.changed());
    let removed = scope.filter(cmp.removed);
    let mut conflicts: Vec<(String, Path)> = Vec::new();
    for (i, e) in managers.0.iter().enumerate() {
        if Some(i) != mine {
            for p in e.set.intersection(&changed).iter() {
                conflicts.push((e.describe(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !req.force {
        // kubectl's own upgrade from client-side apply: fields the last client-side
        // apply set to their live value may change hands.
        let allowed = (req.manager == "kubectl")
            .then(|| allowed_by_last_applied(&schema, live))
            .flatten()
            .unwrap_or_default();
        conflicts.retain(|(_, p)| !allowed.contains(p));
        if !conflicts.is_empty() {
            return Err(conflict_error(conflicts));
        }
    }
    for (i, e) in managers.0.iter_mut().enumerate() {
        if Some(i) != mine {
            e.set = e.set.difference(&changed).difference(&removed);
        }
    }
    let entry = Entry {
        manager: req.manager.to_string(),
        operation: APPLY.into(),
        api_version: req.info.api_version(),
        time: Some(meta::now()),
        subresource: req.subresource.to_string(),
        set: config_set,
    };
    match mine {
        Some(i) => {
            let old_time = managers.0[i].time.clone();
            managers.0[i] = entry;
            if strip(&merged) == strip(live) && managers.same_sets(&before) {
                managers.0[i].time = old_time;
            }
        }
        None => managers.0.push(entry),
    }
    if req.manager == "kubectl" && last_applied(live).is_some() {
        set_last_applied(&mut merged, config);
    }
    if strip(&merged) == strip(live) && managers.same_sets(&before) && !before.0.is_empty() {
        return Ok(None);
    }
    managers.encode(&mut merged);
    Ok(Some(merged))
}

/// Removes the fields `last` applied and the new configuration does not, unless
/// another manager owns them; containers left empty by that go too.
fn prune(schema: &Schema, obj: &mut Value, last: &FieldSet, config: &FieldSet, others: &FieldSet) {
    let gone: Vec<&Path> = last
        .iter()
        .filter(|p| !config.has_prefix(p) && !others.has_prefix(p) && !is_key_field(p))
        .collect();
    // Whole items before their fields: an item without its key fields is no item.
    for p in gone {
        if !edit::remove_path(schema, obj, p) {
            continue;
        }
        for k in (1..p.len()).rev() {
            let anc = &p[..k];
            let empty = match edit::get_path(schema, obj, anc) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !empty || config.has_prefix(anc) || others.has_prefix(anc) {
                break;
            }
            edit::remove_path(schema, obj, anc);
        }
    }
}

/// A key field of a list item (`containers[name="c"].name`), which stays while the
/// item does.
fn is_key_field(p: &[Elem]) -> bool {
    match p {
        [.., Elem::Key(k), Elem::Field(f)] => {
            serde_json::from_str::<serde_json::Map<String, Value>>(k)
                .is_ok_and(|m| m.contains_key(f))
        }
        _ => false,
    }
}

fn last_applied(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Fields of the last client-side applied configuration whose live value is still
/// the applied one.
fn allowed_by_last_applied(schema: &Schema, live: &Value) -> Option<FieldSet> {
    let applied: Value = serde_json::from_str(last_applied(live)?).ok()?;
    let applied = strip(&applied);
    let set = walk::field_set(schema, &applied);
    let cmp = walk::compare(schema, &applied, &strip(live));
    Some(set.difference(&cmp.modified).difference(&cmp.removed))
}

/// Keeps kubectl's client-side apply annotation in step with server-side applies.
fn set_last_applied(obj: &mut Value, config: &Value) {
    let mut applied = config.clone();
    if let Some(a) = applied
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.shift_remove(LAST_APPLIED);
        if a.is_empty()
            && let Some(m) = applied
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
        {
            m.shift_remove("annotations");
        }
    }
    let text = format!("{applied}\n");
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// Upstream's apply conflict: 409 with a `FieldManagerConflict` cause per field.
fn conflict_error(mut conflicts: Vec<(String, Path)>) -> ApiError {
    conflicts.sort();
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(who, p)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {who}"),
                "field": show_path(p),
            })
        })
        .collect();
    let message = if let [(who, p)] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {who}: {}",
            show_path(p)
        )
    } else {
        let mut lines: Vec<String> = Vec::new();
        let mut current: Option<&str> = None;
        for (who, p) in &conflicts {
            if current != Some(who.as_str()) {
                lines.push(format!("conflicts with {who}:"));
                current = Some(who);
            }
            lines.push(format!("- {}", show_path(p)));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut err = ApiError::new(409, "Conflict", message);
    err.details = Some(json!({ "causes": causes }));
    err
}
