//! Keeps the Node authorizer's graph current from the registry: a list, then a watch,
//! of pods, PersistentVolumes and VolumeAttachments (upstream's graph populator
//! informers), so a decision reads memory only.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::Value;

use super::graph::Graph;
use super::refs;
use crate::error::{ApiError, Result};
use crate::registry::{ListParams, WatchEvent, WatchParams};
use crate::state::ApiState;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Pod,
    Volume,
    Attachment,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Pod, Kind::Volume, Kind::Attachment];

    fn resource(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pod => ("", "pods"),
            Kind::Volume => ("", "persistentvolumes"),
            Kind::Attachment => ("storage.k8s.io", "volumeattachments"),
        }
    }
}

fn info(state: &ApiState, kind: Kind) -> Result<Arc<api::ResourceInfo>> {
    let (group, plural) = kind.resource();
    state
        .registry
        .resources
        .get(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
}

/// What one object adds to the graph, read outside the lock (decisions wait on it).
enum Entry {
    Pod(String, Vec<(super::graph::Kind, String)>),
    Volume(Option<super::graph::NsName>, Vec<super::graph::NsName>),
    Attachment(String),
}

fn entry(kind: Kind, obj: &Value) -> Entry {
    match kind {
        Kind::Pod => {
            let (node, mut named) = refs::pod(obj);
            super::graph::normalize(&mut named);
            Entry::Pod(node, named)
        }
        Kind::Volume => {
            let (claim, secrets) = refs::volume(obj);
            Entry::Volume(claim, secrets)
        }
        Kind::Attachment => Entry::Attachment(
            obj.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
    }
}

fn set(g: &mut Graph, ns: &str, name: &str, e: Entry) {
    match e {
        Entry::Pod(node, named) => g.set_pod(ns, name, &node, named),
        Entry::Volume(claim, secrets) => g.set_volume(name, claim, secrets),
        Entry::Attachment(node) => g.set_attachment(name, &node),
    }
}

fn apply(graph: &RwLock<Graph>, kind: Kind, obj: &Value, gone: bool) {
    let ns = api::meta::namespace(obj).unwrap_or_default();
    let name = api::meta::name(obj).unwrap_or_default();
    if !gone {
        let e = entry(kind, obj);
        if let Entry::Pod(node, named) = &e
            && graph.read().has_pod(ns, name, node, named)
        {
            return;
        }
        set(&mut graph.write(), ns, name, e);
        return;
    }
    let mut g = graph.write();
    match kind {
        Kind::Pod => g.remove_pod(ns, name),
        Kind::Volume => g.remove_volume(name),
        Kind::Attachment => g.remove_attachment(name),
    }
}

/// Lists one kind into the graph, replacing what it had in one step (so a relist
/// never shows kubelets an empty graph), returning the revision to watch from.
async fn load(state: &ApiState, graph: &RwLock<Graph>, kind: Kind) -> Result<i64> {
    let page = state
        .registry
        .list(&*info(state, kind)?, None, &ListParams::default())
        .await?;
    let entries: Vec<_> = page
        .items
        .iter()
        .map(|o| {
            let ns = api::meta::namespace(o).unwrap_or_default();
            let name = api::meta::name(o).unwrap_or_default();
            (ns, name, entry(kind, o))
        })
        .collect();
    let mut g = graph.write();
    match kind {
        Kind::Pod => g.clear_pods(),
        Kind::Volume => g.clear_volumes(),
        Kind::Attachment => g.clear_attachments(),
    }
    for (ns, name, e) in entries {
        set(&mut g, ns, name, e);
    }
    Ok(page.revision)
}

/// Fills the graph before the server serves (so kubelets are not refused for want of
/// a list) and keeps it current from then on.
pub async fn start(state: &Arc<ApiState>, graph: Arc<RwLock<Graph>>) -> Result<()> {
    for kind in Kind::ALL {
        if info(state, kind).is_err() {
            // Not every build serves VolumeAttachments; then none can lead anywhere.
            continue;
        }
        let rev = load(state, &graph, kind).await?;
        let state = state.clone();
        let graph = graph.clone();
        tokio::spawn(async move {
            let mut from = Some(rev);
            loop {
                if let Err(e) = follow(&state, &graph, kind, from.take()).await {
                    tracing::warn!(?kind, error = %e, "node authorizer watch failed; relisting");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    Ok(())
}

/// Watches one kind from `from` (after a fresh list when `None`) until the watch ends.
async fn follow(
    state: &ApiState,
    graph: &RwLock<Graph>,
    kind: Kind,
    from: Option<i64>,
) -> Result<()> {
    let rev = match from {
        Some(r) => r,
        None => load(state, graph, kind).await?,
    };
    let params = WatchParams {
        resource_version: Some(rev.to_string()),
        ..Default::default()
    };
    let mut rx = state
        .registry
        .watch(&*info(state, kind)?, None, params)
        .await?;
    while let Some(ev) = rx.recv().await {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                apply(graph, kind, &o.into_value(), false)
            }
            WatchEvent::Deleted(o) => apply(graph, kind, &o.into_value(), true),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(status) => {
                return Err(ApiError::internal(format!("watch ended: {status}")));
            }
        }
    }
    Ok(())
}
