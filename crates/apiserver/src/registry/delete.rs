//! Delete: preconditions, graceful deletion (pods), finalizers and propagation
//! policies (an object with finalizers only gets a deletionTimestamp), then removal.

use serde::Deserialize;
use serde_json::{Value, json};

use api::{ResourceInfo, meta};

use super::{Context, Registry, codec};
use crate::admission::{Operation, Request};
use crate::error::{ApiError, Result};

/// meta/v1 DeleteOptions, from the body or the query.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub preconditions: Option<Preconditions>,
    #[serde(default)]
    pub dry_run: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// The result of a delete.
pub struct Deleted {
    /// The object as deleted, or as updated with its deletionTimestamp.
    pub obj: Value,
    /// False when finalizers or a grace period keep the object for now.
    pub immediately: bool,
}

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

impl Registry {
    pub async fn delete(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
        ctx: &Context,
    ) -> Result<Deleted> {
        let policy = propagation(opts)?;
        if opts.grace_period_seconds.is_some_and(|g| g < 0) {
            return Err(ApiError::invalid(
                info,
                name,
                &[api::FieldError::invalid(
                    "gracePeriodSeconds",
                    opts.grace_period_seconds.unwrap_or(0),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let key = info.key(ns, name);
        loop {
            let kv = self
                .store
                .get(&key)
                .await
                .map_err(|e| ApiError::from_store(e, info, name))?;
            let Some(kv) = kv else {
                return Err(ApiError::not_found(info, name));
            };
            let mut old = codec::decode(&kv)?;
            check_preconditions(info, name, &old, opts)?;
            let req = Request {
                operation: Operation::Delete,
                info,
                subresource: None,
                namespace: ns,
                object: &mut old,
                old: None,
                user: &ctx.user,
                dry_run: ctx.dry_run,
            };
            self.admission.validate(&req).await?;

            let grace = grace_period(info, &old, opts.grace_period_seconds);
            let mut finalizers = meta::finalizers(&old);
            match policy {
                Some(ORPHAN_POLICY) if !finalizers.iter().any(|f| f == ORPHAN) => {
                    finalizers.push(ORPHAN.into())
                }
                Some(FOREGROUND_POLICY) if !finalizers.iter().any(|f| f == FOREGROUND) => {
                    finalizers.push(FOREGROUND.into())
                }
                _ => {}
            }
            let namespace_pending = is_namespace(info)
                && old
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
            if grace > 0 || !finalizers.is_empty() || namespace_pending {
                let Some(new) = mark_deleting(&old, grace, finalizers, is_namespace(info)) else {
                    return Ok(Deleted {
                        obj: old,
                        immediately: false,
                    });
                };
                if ctx.dry_run {
                    return Ok(Deleted {
                        obj: new,
                        immediately: false,
                    });
                }
                match self
                    .store
                    .update(&key, codec::encode(&new), kv.mod_revision)
                    .await
                {
                    Ok(stored) => {
                        let mut new = new;
                        codec::set_resource_version(&mut new, stored.mod_revision);
                        return Ok(Deleted {
                            obj: new,
                            immediately: false,
                        });
                    }
                    Err(store::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(ApiError::from_store(e, info, name)),
                }
            }
            if ctx.dry_run {
                return Ok(Deleted {
                    obj: old,
                    immediately: true,
                });
            }
            match self.delete_now(info, ns, name, kv.mod_revision).await {
                Err(e) if e.code == 409 => continue,
                other => return other,
            }
        }
    }

    /// Removes the object from the store if it is still at `revision`.
    pub(crate) async fn delete_now(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        revision: store::Revision,
    ) -> Result<Deleted> {
        let kv = self
            .store
            .delete(&info.key(ns, name), Some(revision))
            .await
            .map_err(|e| ApiError::from_store(e, info, name))?;
        let obj = codec::decode(&kv)?;
        if let Some(a) = self.allocator_for(info) {
            a.release_service(&obj).await;
        }
        Ok(Deleted {
            obj,
            immediately: true,
        })
    }
}

const ORPHAN_POLICY: &str = "Orphan";
const FOREGROUND_POLICY: &str = "Foreground";

fn propagation(opts: &DeleteOptions) -> Result<Option<&'static str>> {
    match (opts.propagation_policy.as_deref(), opts.orphan_dependents) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "propagationPolicy and orphanDependents cannot both be set",
        )),
        (Some("Orphan"), None) | (None, Some(true)) => Ok(Some(ORPHAN_POLICY)),
        (Some("Foreground"), None) => Ok(Some(FOREGROUND_POLICY)),
        (Some("Background"), None) | (None, Some(false)) | (None, None) => Ok(None),
        (Some(other), None) => Err(ApiError::bad_request(format!(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

fn check_preconditions(
    info: &ResourceInfo,
    name: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> Result<()> {
    let Some(p) = &opts.preconditions else {
        return Ok(());
    };
    if let Some(uid) = &p.uid {
        let actual = meta::uid(obj).unwrap_or_default();
        if uid != actual {
            return Err(ApiError::conflict(
                info,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &p.resource_version {
        let actual = meta::resource_version(obj).unwrap_or_default();
        if rv != actual {
            return Err(ApiError::conflict(
                info,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

fn is_namespace(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "namespaces"
}

/// Pods are deleted gracefully: the kubelet stops them and then deletes with grace 0.
/// Pods not on a node yet, or already finished, go at once.
fn grace_period(info: &ResourceInfo, obj: &Value, requested: Option<i64>) -> i64 {
    if !(info.group.is_empty() && info.plural == "pods") {
        return 0;
    }
    let unscheduled = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let finished = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if unscheduled || finished {
        return 0;
    }
    requested
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

/// The object with deletionTimestamp set (or shortened). `None` when it is already
/// being deleted and nothing changes.
fn mark_deleting(
    old: &Value,
    grace: i64,
    finalizers: Vec<String>,
    namespace: bool,
) -> Option<Value> {
    let now = jiff::Timestamp::now();
    let deadline = now + jiff::SignedDuration::from_secs(grace);
    let mut new = old.clone();
    let existing_grace = old
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    let already = meta::deletion_timestamp(old).is_some();
    let shorter = existing_grace.is_some_and(|g| grace < g);
    let finalizers_changed = finalizers != meta::finalizers(old);
    if already && !shorter && !finalizers_changed {
        return None;
    }
    let m = meta::metadata_mut(&mut new);
    if !already || shorter {
        m.insert(
            "deletionTimestamp".into(),
            json!(meta::format_time(deadline)),
        );
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), json!(finalizers));
    }
    if namespace {
        new["status"]["phase"] = json!("Terminating");
    }
    Some(new)
}
