//! Watch: the store's change stream turned into Kubernetes watch events, filtered by
//! selectors (an object leaving a selector is DELETED, entering it is ADDED), with
//! synthetic ADDED events for the initial state, bookmarks, and 410 Expired for a
//! resourceVersion that was compacted away.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use api::ResourceInfo;
use api::selectors::{FieldSelector, LabelSelector};
use store::{EventKind, Revision};

use super::list::{ListParams, matches};
use super::shared::{Cursor, Decoded, WatchObject};
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

/// Events waiting for a slow in-process consumer of [`Registry::watch`] before the
/// watch pushes back on the store.
const BUFFER: usize = 256;
const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// A watch's events, ending after an error event or when the store's stream ends.
pub type WatchEvents = BoxStream<'static, WatchEvent>;

impl Registry {
    /// Starts a watch; events arrive on the returned channel until it closes. For
    /// in-process consumers; the HTTP handler polls [`Registry::watch_events`] itself,
    /// which spares every delivery a task hop.
    pub async fn watch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        params: WatchParams,
    ) -> Result<mpsc::Receiver<WatchEvent>> {
        let mut events = self.watch_events(info, ns, params).await?;
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = events.next() => {
                        let Some(ev) = ev else { return };
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }

    /// Starts a watch as a stream, driven by whoever polls it.
    pub async fn watch_events(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        params: WatchParams,
    ) -> Result<WatchEvents> {
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
                let gone = ApiError::gone(format!(
                    "too old resource version: {requested} ({compacted})"
                ));
                let ev = WatchEvent::Error(WatchObject::new(gone.status()));
                return Ok(stream::iter([ev]).boxed());
            }
            Err(e) => return Err(ApiError::from_store(e, info, "")),
        };

        let bookmark_every = params
            .bookmark_interval
            .unwrap_or(DEFAULT_BOOKMARK_INTERVAL);
        let follow = Follow {
            stream,
            ticker: tokio::time::interval_at(
                tokio::time::Instant::now() + bookmark_every,
                bookmark_every,
            ),
            bookmarks: params.allow_bookmarks,
            last: start,
            info: info.clone(),
            list_params,
            decoded: self.decoded.clone(),
            cursor: Cursor::default(),
            ended: false,
        };
        let mut head: Vec<WatchEvent> = initial
            .into_iter()
            .map(|o| WatchEvent::Added(WatchObject::new(o)))
            .collect();
        if params.send_initial_events == Some(true) {
            head.push(follow.bookmark(start, true));
        }
        let tail = stream::unfold(
            follow,
            |mut f| async move { f.next().await.map(|ev| (ev, f)) },
        );
        Ok(stream::iter(head).chain(tail).boxed())
    }
}

/// A watch after its initial events: the store's changes as this watcher sees them,
/// and bookmarks.
struct Follow {
    stream: store::WatchStream,
    ticker: tokio::time::Interval,
    bookmarks: bool,
    /// The revision of the last change seen, for bookmarks.
    last: Revision,
    info: ResourceInfo,
    list_params: ListParams,
    decoded: Arc<Decoded>,
    cursor: Cursor,
    ended: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<WatchEvent> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                // The store first: while changes flow, the ticker is not polled for
                // each of them; it is when the store has nothing ready.
                biased;
                item = self.stream.next() => {
                    let event = match item? {
                        Ok(ev) => ev,
                        Err(e) => {
                            let status = match e {
                                store::Error::Compacted { requested, compacted } => ApiError::gone(
                                    format!("too old resource version: {requested} ({compacted})")),
                                other => ApiError::from_store(other, &self.info, ""),
                            };
                            self.ended = true;
                            return Some(WatchEvent::Error(WatchObject::new(status.status())));
                        }
                    };
                    self.last = event.revision();
                    if let Some(out) = translate(&self.info, &self.list_params, &self.decoded, &mut self.cursor, &event) {
                        return Some(out);
                    }
                }
                _ = self.ticker.tick(), if self.bookmarks => {
                    return Some(self.bookmark(self.last, false));
                }
            }
        }
    }

    /// A bookmark at `rv`; `end` marks the end of the initial events.
    fn bookmark(&self, rv: Revision, end: bool) -> WatchEvent {
        let mut m = json!({"resourceVersion": rv.to_string()});
        if end {
            m["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        WatchEvent::Bookmark(WatchObject::new(json!({
            "kind": self.info.kind,
            "apiVersion": self.info.api_version(),
            "metadata": m,
        })))
    }
}

/// A store event as the watch event this watcher sees, if any.
fn translate(
    info: &ResourceInfo,
    params: &ListParams,
    decoded: &Decoded,
    cursor: &mut Cursor,
    event: &store::Event,
) -> Option<WatchEvent> {
    let filtering = !params.labels.is_empty() || !params.fields.is_empty();
    let new = cursor.get(decoded, &event.kv)?;
    let passes = |o: &WatchObject| !filtering || matches(info, params, o.value());
    match event.kind {
        EventKind::Create => passes(&new).then_some(WatchEvent::Added(new)),
        EventKind::Delete => passes(&new).then_some(WatchEvent::Deleted(new)),
        // Unfiltered, an update is MODIFIED without looking at what it replaced.
        EventKind::Update if !filtering => Some(WatchEvent::Modified(new)),
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
