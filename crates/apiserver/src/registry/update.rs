//! Update and the retry loop every read-modify-write shares (upstream's
//! `GuaranteedUpdate`): read the current object, compute the new one, write it with
//! compare-and-swap on the read revision, and retry on a conflict unless the caller
//! pinned a resourceVersion.

use serde_json::{Value, json};

use api::{ResourceInfo, meta};

use super::{Context, Registry, codec, set_type_meta};
use crate::admission::{Operation, Request};
use crate::error::{ApiError, Result};

/// Which part of the object an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateMode {
    /// The main resource: everything but status (when status is a subresource).
    Main,
    /// The `/status` subresource: only status.
    Status,
    /// A namespace's `/finalize` subresource: only `spec.finalizers`.
    Finalize,
    /// The server's own writes that bypass strategy and admission (pods/binding).
    Unchecked,
}

/// The outcome of an update.
pub struct Updated {
    pub object: Value,
    /// True when a PUT of a missing object created it.
    pub created: bool,
}

impl Registry {
    /// PUT: replaces the object with `new`, conditional on `new`'s resourceVersion when
    /// it has one.
    pub async fn update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mut new: Value,
        mode: UpdateMode,
        ctx: &Context,
    ) -> Result<Updated> {
        super::create::check_type_meta(info, &new)?;
        set_type_meta(info, &mut new);
        match meta::name(&new) {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            None => meta::set_str(&mut new, "name", name),
            _ => {}
        }
        super::create::reconcile_namespace(info, ns, &mut new)?;
        if mode == UpdateMode::Main && info.strategy.allow_create_on_update() {
            let key = info.key(ns, name);
            let existing = self
                .store
                .get(&key)
                .await
                .map_err(|e| ApiError::from_store(e, info, name))?;
            if existing.is_none() {
                let object = self.create(info, ns, new, ctx).await?;
                return Ok(Updated {
                    object,
                    created: true,
                });
            }
        }
        let object = self
            .guaranteed_update(info, ns, name, mode, ctx, |_old| Ok(new.clone()))
            .await?;
        Ok(Updated {
            object,
            created: false,
        })
    }

    /// Read-modify-write with retries. `mutate` gets the current object and returns the
    /// desired one; a resourceVersion in its result acts as a precondition. The first
    /// attempt starts from the watch cache's copy, as upstream's GuaranteedUpdate does;
    /// whatever that attempt concludes short of a successful compare-and-swap (an
    /// error, a no-op, a dry run) is concluded again from the store's latest.
    pub async fn guaranteed_update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mode: UpdateMode,
        ctx: &Context,
        mut mutate: impl FnMut(&Value) -> Result<Value>,
    ) -> Result<Value> {
        let key = info.key(ns, name);
        let mut latest = false;
        loop {
            let read = if latest {
                self.store.get(&key).await
            } else {
                self.store.get_cached(&key).await
            };
            let kv = read.map_err(|e| ApiError::from_store(e, info, name))?;
            let outcome = match kv {
                Some(kv) => {
                    self.try_update(info, ns, name, mode, ctx, &mut mutate, kv)
                        .await
                }
                None => Err(ApiError::not_found(info, name)),
            };
            match outcome {
                Ok(Outcome::Written(object)) => return Ok(object),
                Ok(Outcome::Conflict) => latest = true,
                Ok(Outcome::Unwritten(_)) | Err(_) if !latest => latest = true,
                Ok(Outcome::Unwritten(object)) => return Ok(object),
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt of [`Registry::guaranteed_update`] from the state `kv`.
    #[allow(clippy::too_many_arguments)]
    async fn try_update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        mode: UpdateMode,
        ctx: &Context,
        mutate: &mut impl FnMut(&Value) -> Result<Value>,
        kv: store::KeyValue,
    ) -> Result<Outcome> {
        let key = &kv.key;
        let old = codec::decode(&kv)?;
        let mut new = mutate(&old)?;
        set_type_meta(info, &mut new);
        let pinned = meta::resource_version(&new).map(str::to_string);
        if let Some(rv) = &pinned
            && codec::parse_resource_version(rv)? != kv.mod_revision
        {
            return Err(ApiError::modified(info, name));
        }
        let applied_fields = ctx
            .applying
            .then(|| new.pointer("/metadata/managedFields").cloned());
        self.prepare_update(info, ns, &old, &mut new, mode, ctx)
            .await?;
        match (ctx.update_manager(), applied_fields) {
            (_, _) if mode == UpdateMode::Unchecked => {}
            (Some(manager), _) => crate::managedfields::record_update(
                info,
                Some(&old),
                &mut new,
                manager,
                ctx.subresource(),
            ),
            (None, Some(fields)) => {
                let m = meta::metadata_mut(&mut new);
                match fields {
                    Some(f) => m.insert("managedFields".into(), f),
                    None => m.shift_remove("managedFields"),
                };
            }
            (None, None) => {}
        }
        if same_object(&old, &new) {
            return Ok(Outcome::Unwritten(old));
        }
        if ctx.dry_run {
            return Ok(Outcome::Unwritten(new));
        }
        if should_delete_after_update(info, &new) {
            // Guarded by the revision read, so it also proves that read current.
            return self
                .delete_now(info, ns, name, kv.mod_revision)
                .await
                .map(|d| Outcome::Written(d.obj));
        }
        let (allocation, released) = match self.allocator_for(info) {
            Some(a) if mode == UpdateMode::Main => {
                let (alloc, release) = a
                    .reallocate(&old, &mut new, false)
                    .await
                    .map_err(|e| super::alloc_error(info, name, e))?;
                (Some(alloc), release)
            }
            _ => (None, Vec::new()),
        };
        let written = self
            .store
            .update(key, codec::encode(&new), kv.mod_revision)
            .await;
        if let Some(a) = self.allocator_for(info) {
            match (&written, allocation) {
                (Ok(_), _) => a.release_keys(&released).await,
                (Err(_), Some(alloc)) => a.release(alloc).await,
                _ => {}
            }
        }
        match written {
            Ok(stored) => {
                codec::set_resource_version(&mut new, stored.mod_revision);
                Ok(Outcome::Written(new))
            }
            Err(store::Error::Conflict { .. }) if pinned.is_none() => Ok(Outcome::Conflict),
            Err(store::Error::NotFound { .. }) => Err(ApiError::not_found(info, name)),
            Err(e) => Err(ApiError::from_store(e, info, name)),
        }
    }

    /// Everything between "the client's object" and "what gets stored" on update.
    async fn prepare_update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        old: &Value,
        new: &mut Value,
        mode: UpdateMode,
        ctx: &Context,
    ) -> Result<()> {
        let name = meta::name(old).unwrap_or_default().to_string();
        if mode == UpdateMode::Unchecked {
            keep_system_metadata(old, new);
            return Ok(());
        }
        match mode {
            UpdateMode::Main => {
                if info.subresource("status").is_some() {
                    copy_field(old, new, "status");
                }
            }
            UpdateMode::Status => *new = with_field_of(old, new, "/status"),
            UpdateMode::Finalize => *new = with_field_of(old, new, "/spec/finalizers"),
            UpdateMode::Unchecked => {}
        }
        keep_system_metadata(old, new);
        if mode == UpdateMode::Main {
            if self.allocator_for(info).is_some() {
                crate::allocator::keep_allocated_values(old, new);
            }
            info.strategy.default(new);
        }
        let mut req = Request {
            operation: Operation::Update,
            info,
            subresource: match mode {
                UpdateMode::Main => None,
                UpdateMode::Status => Some("status"),
                UpdateMode::Finalize => Some("finalize"),
                UpdateMode::Unchecked => None,
            },
            namespace: ns,
            object: new,
            old: Some(old),
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admission.admit(&mut req).await?;
        let errors = match mode {
            UpdateMode::Main => {
                info.strategy.prepare_for_update(new, old);
                bump_generation(info, old, new);
                info.strategy.validate_update(new, old)
            }
            UpdateMode::Status | UpdateMode::Finalize | UpdateMode::Unchecked => {
                info.strategy.prepare_for_status_update(new, old);
                info.strategy.validate_status_update(new, old)
            }
        };
        let mut errors = errors;
        errors.extend(no_new_finalizers_when_deleting(old, new));
        if !errors.is_empty() {
            return Err(ApiError::invalid(info, &name, &errors));
        }
        let req = Request {
            operation: Operation::Update,
            info,
            subresource: None,
            namespace: ns,
            object: new,
            old: Some(old),
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        self.admission.validate(&req).await
    }
}

/// Sets `new[field]` to `old[field]` (or removes it when `old` lacks it).
fn copy_field(old: &Value, new: &mut Value, field: &str) {
    let Some(o) = new.as_object_mut() else { return };
    match old.get(field) {
        Some(v) => {
            o.insert(field.to_string(), v.clone());
        }
        None => {
            o.remove(field);
        }
    }
}

/// `old`, except at `pointer`, where it takes `new`'s value; resourceVersion follows
/// `new` so that it still acts as a precondition.
fn with_field_of(old: &Value, new: &Value, pointer: &str) -> Value {
    let mut out = old.clone();
    let (parent, field) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let value = new.pointer(pointer).cloned();
    if let Some(rv) = meta::resource_version(new) {
        meta::set_str(&mut out, "resourceVersion", rv);
    }
    if out.pointer(parent).is_none()
        && value.is_some()
        && let Some(o) = out.as_object_mut()
    {
        o.insert(parent.trim_start_matches('/').to_string(), json!({}));
    }
    if let Some(target) = out.pointer_mut(parent).and_then(Value::as_object_mut) {
        match value {
            Some(v) => {
                target.insert(field.to_string(), v);
            }
            None => {
                target.remove(field);
            }
        }
    }
    out
}

/// The fields of metadata that only the server changes survive any update. A uid the
/// client left out is kept; one it changed is left for validation to refuse.
fn keep_system_metadata(old: &Value, new: &mut Value) {
    let old_meta = meta::metadata(old).clone();
    let m = meta::metadata_mut(new);
    for f in ["creationTimestamp", "deletionTimestamp", "generation"] {
        match old_meta.get(f) {
            Some(v) => m.insert(f.to_string(), v.clone()),
            None => m.remove(f),
        };
    }
    let uid_missing = m
        .get("uid")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if uid_missing && let Some(uid) = old_meta.get("uid") {
        m.insert("uid".into(), uid.clone());
    }
    if m.get("deletionGracePeriodSeconds").is_none()
        && let Some(g) = old_meta.get("deletionGracePeriodSeconds")
    {
        m.insert("deletionGracePeriodSeconds".into(), g.clone());
    }
    m.remove("selfLink");
}

/// Spec changes bump the generation of types that track it: any change outside
/// metadata and status.
fn bump_generation(info: &ResourceInfo, old: &Value, new: &mut Value) {
    if !info.strategy.tracks_generation() {
        return;
    }
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return;
    };
    let outside = |k: &String| k != "metadata" && k != "status";
    let changed = a.keys().filter(|k| outside(k)).count()
        != b.keys().filter(|k| outside(k)).count()
        || a.iter()
            .filter(|(k, _)| outside(k))
            .any(|(k, v)| b.get(k) != Some(v));
    if changed {
        let g = meta::generation(old).max(0) + 1;
        meta::metadata_mut(new).insert("generation".into(), json!(g));
    }
}

/// Equal but for resourceVersion: nothing to write.
fn same_object(old: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    let same_meta = |x: &Value, y: &Value| match (x.as_object(), y.as_object()) {
        (Some(x), Some(y)) => {
            let fields = |m: &'_ serde_json::Map<String, Value>| {
                m.iter().filter(|(k, _)| *k != "resourceVersion").count()
            };
            fields(x) == fields(y)
                && x.iter()
                    .filter(|(k, _)| *k != "resourceVersion")
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match b.get(k) {
            Some(w) if k == "metadata" => same_meta(v, w),
            Some(w) => v == w,
            None => false,
        })
}

/// Upstream forbids adding finalizers to an object that is being deleted.
fn no_new_finalizers_when_deleting(old: &Value, new: &Value) -> Vec<api::FieldError> {
    if meta::deletion_timestamp(old).is_none() {
        return Vec::new();
    }
    let before = meta::finalizers(old);
    let added: Vec<String> = meta::finalizers(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Vec::new();
    }
    vec![api::FieldError::forbidden(
        "metadata.finalizers",
        format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
        ),
    )]
}

/// An object being deleted whose last finalizer went away is removed for good.
pub(crate) fn should_delete_after_update(info: &ResourceInfo, obj: &Value) -> bool {
    if meta::deletion_timestamp(obj).is_none() || !meta::finalizers(obj).is_empty() {
        return false;
    }
    if info.group.is_empty() && info.plural == "namespaces" {
        let spec_finalizers = obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        return spec_finalizers == 0;
    }
    obj.pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        == 0
}

/// How one attempt of a guaranteed update ended.
enum Outcome {
    /// Stored by a compare-and-swap, so it was made from the latest state.
    Written(Value),
    /// Nothing stored (no change, or a dry run): only as current as the state read.
    Unwritten(Value),
    /// Someone else wrote first; read again.
    Conflict,
}
