//! Watch: the store's change stream turned into Kubernetes watch events, filtered by
//! selectors (an object leaving a selector is DELETED, entering it is ADDED), with
//! synthetic ADDED events for the initial state, bookmarks, and 410 Expired for a
//! resourceVersion that was compacted away.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use api::ResourceInfo;
use api::selectors::{FieldSelector, LabelSelector};
use store::{EventKind, Revision};

use super::list::{ListParams, matches};
use super::shared::{Decoded, WatchObject};
use super::{Registry, codec};
use crate::error::{ApiError, Result};

#[derive(Clone, Debug, Default)]
pub struct WatchParams {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
    /// How often to send a bookmark when bookmarks are allowed.
    pub bookmark_interval: Option<Duration>,
}

/// A watch event; its object is shared with the other watchers of the same change.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(WatchObject),
    Modified(WatchObject),
    Deleted(WatchObject),
    /// An object with only kind, apiVersion and metadata (resourceVersion, annotations).
    Bookmark(WatchObject),
    /// A Status object; the watch ends after it.
    Error(WatchObject),
}

impl WatchEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Added(_) => "ADDED",
            Self::Modified(_) => "MODIFIED",
            Self::Deleted(_) => "DELETED",
            Self::Bookmark(_) => "BOOKMARK",
            Self::Error(_) => "ERROR",
        }
    }

    pub fn object(&self) -> &Value {
        self.shared().value()
    }

    /// The object as it is shared, with its JSON encoding once encoded.
    pub fn shared(&self) -> &WatchObject {
        match self {
            Self::Added(o)
            | Self::Modified(o)
            | Self::Deleted(o)
            | Self::Bookmark(o)
            | Self::Error(o) => o,
        }
    }
}

/// Events waiting for a slow client before the watch pushes back on the store.
const BUFFER: usize = 256;
const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

impl Registry {
    /// Starts a watch; events arrive on the returned channel until it closes.
    pub async fn watch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        params: WatchParams,
    ) -> Result<mpsc::Receiver<WatchEvent>> {
        let rv = params.resource_version.as_deref().filter(|s| !s.is_empty());
        let legacy_initial = matches!(rv, None | Some("0"));
        let send_initial = params.send_initial_events.unwrap_or(legacy_initial);
        if params.send_initial_events.is_some() {
            if params.resource_version_match.as_deref() != Some("NotOlderThan") {
                return Err(ApiError::invalid_watch(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
                ));
            }
            if params.send_initial_events == Some(true) && !params.allow_bookmarks {
                return Err(ApiError::invalid_watch(
                    "allowWatchBookmarks",
                    "allowWatchBookmarks must be true when sendInitialEvents is true",
                ));
            }
        }
        let (tx, rx) = mpsc::channel(BUFFER);
        let list_params = ListParams {
            labels: params.labels.clone(),
            fields: params.fields.clone(),
            ..Default::default()
        };
        let mut start: Revision = match rv {
            Some(rv) if !legacy_initial => codec::parse_resource_version(rv)?,
            _ => 0,
        };
        let mut initial = Vec::new();
        if send_initial || start == 0 {
            // Read the state and watch from its revision so no change is missed.
            let page = self.list(info, ns, &list_params).await?;
            if send_initial {
                initial = page.items;
            }
            start = page.revision;
        }
        let prefix = info.list_prefix(ns);
        let stream = match self.store.watch(&prefix, start).await {
            Ok(s) => s,
            Err(store::Error::Compacted {
                requested,
                compacted,
            }) => {
                let _ = tx.try_send(WatchEvent::Error(WatchObject::new(
                    ApiError::gone(format!(
                        "too old resource version: {requested} ({compacted})"
                    ))
                    .status(),
                )));
                return Ok(rx);
            }
            Err(e) => return Err(ApiError::from_store(e, info, "")),
        };

        let info = info.clone();
        let kind_meta = (info.api_version(), info.kind.clone());
        let bookmark_every = params
            .bookmark_interval
            .unwrap_or(DEFAULT_BOOKMARK_INTERVAL);
        let initial_end_bookmark = params.send_initial_events == Some(true);
        let decoded = self.decoded.clone();
        tokio::spawn(async move {
            for obj in initial {
                if tx
                    .send(WatchEvent::Added(WatchObject::new(obj)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let bookmark = |rv: Revision, end: bool| {
                let mut m = json!({"resourceVersion": rv.to_string()});
                if end {
                    m["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                WatchEvent::Bookmark(WatchObject::new(
                    json!({"kind": kind_meta.1, "apiVersion": kind_meta.0, "metadata": m}),
                ))
            };
            if initial_end_bookmark && tx.send(bookmark(start, true)).await.is_err() {
                return;
            }
            let mut last = start;
            let mut stream = stream;
            let mut ticker = tokio::time::interval(bookmark_every);
            ticker.tick().await;
            loop {
                tokio::select! {
                    item = stream.next() => {
                        let Some(item) = item else { return };
                        let event = match item {
                            Ok(ev) => ev,
                            Err(e) => {
                                let status = match e {
                                    store::Error::Compacted { requested, compacted } => ApiError::gone(
                                        format!("too old resource version: {requested} ({compacted})")),
                                    other => ApiError::from_store(other, &info, ""),
                                };
                                let _ = tx.send(WatchEvent::Error(WatchObject::new(status.status()))).await;
                                return;
                            }
                        };
                        last = event.revision();
                        let Some(out) = translate(&info, &list_params, &decoded, &event) else { continue };
                        if tx.send(out).await.is_err() {
                            return;
                        }
                    }
                    _ = ticker.tick(), if params.allow_bookmarks => {
                        if tx.send(bookmark(last, false)).await.is_err() {
                            return;
                        }
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}

/// A store event as the watch event this watcher sees, if any.
fn translate(
    info: &ResourceInfo,
    params: &ListParams,
    decoded: &Arc<Decoded>,
    event: &store::Event,
) -> Option<WatchEvent> {
    let filtering = !params.labels.is_empty() || !params.fields.is_empty();
    let new = decoded.get(&event.kv)?;
    let passes = |o: &WatchObject| !filtering || matches(info, params, o.value());
    match event.kind {
        EventKind::Create => passes(&new).then_some(WatchEvent::Added(new)),
        EventKind::Delete => passes(&new).then_some(WatchEvent::Deleted(new)),
        EventKind::Update => {
            let was = event
                .prev
                .as_ref()
                .and_then(|kv| decoded.get(kv))
                .is_some_and(|o| passes(&o));
            match (was, passes(&new)) {
                (true, true) => Some(WatchEvent::Modified(new)),
                (false, true) => Some(WatchEvent::Added(new)),
                (true, false) => Some(WatchEvent::Deleted(new)),
                (false, false) => None,
            }
        }
    }
}
