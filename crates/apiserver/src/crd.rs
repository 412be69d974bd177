//! Serving custom resources: CustomResourceDefinitions are watched, and each one's
//! served versions are added to (or removed from) the resources this server serves.
//! A new CRD gets its names accepted and the `Established` condition; a deleted one
//! has its custom objects removed before its finalizer is lifted (upstream's
//! `customresourcecleanup.apiextensions.k8s.io`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;

use serde_json::{Value, json};

use api::ResourceInfo;

use crate::error::Result;
use crate::registry::{Context, ListParams, UpdateMode, WatchEvent, WatchParams};
use crate::state::ApiState;

pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn crd_info(state: &ApiState) -> Arc<ResourceInfo> {
    state
        .registry
        .resources
        .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("CRDs are built in")
}

/// The resources built for each CRD, by uid, with the resourceVersion they were
/// built from: a CRD's strategies (and the CEL rules they compile) are rebuilt when
/// that CRD changes, not on every other CRD's event. Keyed by uid, so servers
/// sharing the process (tests) never see each other's entries.
static BUILT: LazyLock<Mutex<HashMap<String, Built>>> = LazyLock::new(Mutex::default);

/// A resourceVersion and the resources built from the CRD at it.
type Built = (String, Vec<ResourceInfo>);

fn built(crd: &Value) -> Vec<ResourceInfo> {
    let uid = api::meta::uid(crd).unwrap_or_default().to_string();
    let rv = api::meta::resource_version(crd)
        .unwrap_or_default()
        .to_string();
    if uid.is_empty() {
        return api::crd::resources_for(crd);
    }
    let mut cache = BUILT.lock();
    if let Some((at, infos)) = cache.get(&uid)
        && *at == rv
    {
        return infos.clone();
    }
    let infos = api::crd::resources_for(crd);
    cache.insert(uid, (rv, infos.clone()));
    infos
}

/// Serves exactly the resources of `crds`.
fn register(state: &ApiState, crds: &[Value]) {
    let added: Vec<ResourceInfo> = crds
        .iter()
        .filter(|c| {
            api::meta::deletion_timestamp(c).is_none()
                || api::meta::finalizers(c)
                    .iter()
                    .any(|f| f == CLEANUP_FINALIZER)
        })
        .flat_map(built)
        .collect();
    state.registry.resources.set_dynamic(|r| r.custom, added);
}

/// Forgets the built resources of a deleted CRD.
fn forget(crd: &Value) {
    if let Some(uid) = api::meta::uid(crd) {
        BUILT.lock().remove(uid);
    }
}

/// Loads the CRDs present at start-up so their resources are served from the first request.
pub async fn load(state: &ApiState) -> Result<()> {
    let info = crd_info(state);
    let page = state
        .registry
        .list(&info, None, &ListParams::default())
        .await?;
    register(state, &page.items);
    Ok(())
}

/// Follows CRD changes until the server stops.
pub fn spawn_sync(state: Arc<ApiState>) {
    spawn_sync_on(&tokio::runtime::Handle::current(), state);
}

/// [`spawn_sync`] on a given runtime.
pub fn spawn_sync_on(runtime: &tokio::runtime::Handle, state: Arc<ApiState>) {
    runtime.spawn(async move {
        loop {
            if let Err(e) = sync_once(&state).await {
                tracing::warn!(error = %e, "CRD sync failed; retrying");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn sync_once(state: &Arc<ApiState>) -> Result<()> {
    let info = crd_info(state);
    let page = state
        .registry
        .list(&info, None, &ListParams::default())
        .await?;
    let mut crds = page.items;
    register(state, &crds);
    for crd in &crds {
        reconcile(state, &info, crd).await?;
    }
    let params = WatchParams {
        resource_version: Some(page.revision.to_string()),
        ..Default::default()
    };
    let mut rx = state.registry.watch(&info, None, params).await?;
    while let Some(ev) = rx.recv().await {
        let (obj, gone) = match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => (o.into_value(), false),
            WatchEvent::Deleted(o) => (o.into_value(), true),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(status) => {
                tracing::debug!(%status, "CRD watch ended");
                return Ok(());
            }
        };
        let name = api::meta::name(&obj).unwrap_or_default().to_string();
        crds.retain(|c| api::meta::name(c) != Some(name.as_str()));
        if gone {
            forget(&obj);
        } else {
            crds.push(obj.clone());
        }
        register(state, &crds);
        if !gone {
            reconcile(state, &info, &obj).await?;
        }
    }
    Ok(())
}

/// Accepts a new CRD's names, or cleans up after a deleted one.
async fn reconcile(state: &ApiState, info: &ResourceInfo, crd: &Value) -> Result<()> {
    let name = api::meta::name(crd).unwrap_or_default().to_string();
    let ctx = Context::system();
    if api::meta::deletion_timestamp(crd).is_some() {
        if api::meta::finalizers(crd)
            .iter()
            .any(|f| f == CLEANUP_FINALIZER)
        {
            delete_instances(state, crd).await?;
            state
                .registry
                .guaranteed_update(info, None, &name, UpdateMode::Main, &ctx, |cur| {
                    let mut next = cur.clone();
                    let kept: Vec<String> = api::meta::finalizers(cur)
                        .into_iter()
                        .filter(|f| f != CLEANUP_FINALIZER)
                        .collect();
                    next["metadata"]["finalizers"] = json!(kept);
                    Ok(next)
                })
                .await?;
        }
        return Ok(());
    }
    if !api::meta::finalizers(crd)
        .iter()
        .any(|f| f == CLEANUP_FINALIZER)
    {
        state
            .registry
            .guaranteed_update(info, None, &name, UpdateMode::Main, &ctx, |cur| {
                let mut next = cur.clone();
                let mut fins = api::meta::finalizers(cur);
                if !fins.iter().any(|f| f == CLEANUP_FINALIZER) {
                    fins.push(CLEANUP_FINALIZER.into());
                }
                next["metadata"]["finalizers"] = json!(fins);
                Ok(next)
            })
            .await?;
    }
    if !api::crd::is_established(crd) {
        state
            .registry
            .guaranteed_update(info, None, &name, UpdateMode::Status, &ctx, |cur| {
                let mut next = cur.clone();
                let now = api::meta::now();
                next["status"]["acceptedNames"] = cur["spec"]["names"].clone();
                next["status"]["conditions"] = json!([
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
                ]);
                let stored: Vec<Value> = cur["spec"]["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|v| v["storage"].as_bool() == Some(true))
                    .map(|v| v["name"].clone())
                    .collect();
                next["status"]["storedVersions"] = json!(stored);
                Ok(next)
            })
            .await?;
    }
    Ok(())
}

/// Removes every object of a deleted CRD, straight from the store.
async fn delete_instances(state: &ApiState, crd: &Value) -> Result<()> {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if group.is_empty() || plural.is_empty() {
        return Ok(());
    }
    let prefix = format!("{}/", api::crd::storage_prefix(group, plural));
    let store = &state.registry.store;
    let listed = store
        .list(&prefix, store::ListOptions::default())
        .await
        .map_err(crate::error::ApiError::internal)?;
    for kv in listed.items {
        match store.delete(&kv.key, None).await {
            Ok(_) | Err(store::Error::NotFound { .. }) => {}
            Err(e) => return Err(crate::error::ApiError::internal(e)),
        }
    }
    Ok(())
}
