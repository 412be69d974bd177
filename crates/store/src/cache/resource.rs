//! The cache of one resource type: its upstream watch, the objects as of the latest
//! event, the window of recent events and the watchers it feeds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::wrappers::ReceiverStream;

use super::CacheConfig;
use crate::{
    Error, Event, EventKind, KeyValue, ListOptions, ListResult, ProgressStream, Result, Revision,
    Store, WatchItem, WatchStream,
};

pub(super) struct ResourceCache {
    inner: Arc<dyn Store>,
    config: CacheConfig,
    /// Whether the upstream watch reports progress; without it the cache only knows
    /// it is current at the revisions of its own events.
    progress: bool,
    state: Mutex<State>,
    /// The revision `state.objects` reflects, for lists waiting to be served.
    fresh: tokio::sync::watch::Sender<Revision>,
}

struct State {
    /// Every object under the root, sharing its value with the history.
    objects: BTreeMap<String, KeyValue>,
    /// The revision `objects` is the state at.
    revision: Revision,
    /// Every event under the root after `window_start`, in revision order.
    history: VecDeque<Event>,
    window_start: Revision,
    watchers: Vec<Watcher>,
    /// Why the upstream watch ended; the cache is then replaced on next use.
    failed: Option<Error>,
}

struct Watcher {
    prefix: String,
    after: Revision,
    tx: mpsc::Sender<Event>,
    /// The error the watcher's stream ends with once its channel drains.
    ending: Arc<Mutex<Option<Error>>>,
}

impl ResourceCache {
    /// Lists `root` from the backend and follows it with one upstream watch from the
    /// list's revision.
    pub(super) async fn start(
        inner: Arc<dyn Store>,
        root: &str,
        config: CacheConfig,
    ) -> Result<Arc<Self>> {
        let listed = inner.list(root, ListOptions::default()).await?;
        let start = listed.revision;
        let (upstream, progress) = watch_upstream(inner.as_ref(), root, start).await?;
        let objects = listed
            .items
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect();
        let cache = Arc::new(Self {
            inner,
            config,
            progress,
            state: Mutex::new(State {
                objects,
                revision: start,
                history: VecDeque::new(),
                window_start: start,
                watchers: Vec::new(),
                failed: None,
            }),
            fresh: tokio::sync::watch::Sender::new(start),
        });
        tokio::spawn(cache.clone().pump(upstream));
        Ok(cache)
    }

    pub(super) fn is_live(&self) -> bool {
        self.state.lock().failed.is_none()
    }

    /// Forgets history at and before `revision`, which the backend compacted.
    pub(super) fn compacted(&self, revision: Revision) {
        let mut st = self.state.lock();
        while st.history.front().is_some_and(|e| e.revision() <= revision) {
            st.history.pop_front();
        }
        st.window_start = st.window_start.max(revision);
    }

    async fn pump(self: Arc<Self>, mut upstream: ProgressStream) {
        let ended = loop {
            match upstream.next().await {
                Some(Ok(WatchItem::Event(event))) => self.deliver(event),
                Some(Ok(WatchItem::Progress(revision))) => {
                    let mut st = self.state.lock();
                    st.revision = st.revision.max(revision);
                    let now = st.revision;
                    drop(st);
                    self.fresh.send_replace(now);
                }
                Some(Err(e)) => break e,
                None => {
                    break Error::WatchClosed {
                        reason: "the store's watch ended".into(),
                    };
                }
            }
        };
        tracing::debug!(error = %ended, "watch cache restarts on next use");
        let mut st = self.state.lock();
        for w in st.watchers.drain(..) {
            *w.ending.lock() = Some(ended.clone());
        }
        st.failed = Some(ended);
        drop(st);
        // Waiting lists wake up and go to the backend.
        self.fresh.send_modify(|_| {});
    }

    fn deliver(&self, event: Event) {
        let mut st = self.state.lock();
        let capacity = self.config.watcher_buffer;
        st.watchers.retain(|w| {
            if event.revision() <= w.after || !event.kv.key.starts_with(&w.prefix) {
                return !w.tx.is_closed();
            }
            match w.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    *w.ending.lock() = Some(Error::WatchClosed {
                        reason: format!(
                            "watcher too slow: more than {capacity} events behind; watch again"
                        ),
                    });
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
        match event.kind {
            EventKind::Create | EventKind::Update => {
                st.objects.insert(event.kv.key.clone(), event.kv.clone());
            }
            EventKind::Delete => {
                st.objects.remove(&event.kv.key);
            }
        }
        st.revision = st.revision.max(event.revision());
        let now = st.revision;
        st.history.push_back(event);
        if st.history.len() > self.config.history
            && let Some(old) = st.history.pop_front()
        {
            st.window_start = old.revision();
        }
        drop(st);
        self.fresh.send_replace(now);
    }

    /// A list at the latest revision served from memory once the cache has caught up
    /// with `current` (the backend's revision when the list came), or `None` when it
    /// does not within the deadline and the backend must answer.
    pub(super) async fn list(
        &self,
        prefix: &str,
        opts: &ListOptions,
        current: Revision,
        deadline: Duration,
    ) -> Option<ListResult> {
        let mut fresh = self.fresh.subscribe();
        if !self.progress && *fresh.borrow() < current {
            // Nothing would tell the cache it caught up unless an event of its own does.
            return None;
        }
        let caught_up = async {
            loop {
                if !self.is_live() {
                    return false;
                }
                if *fresh.borrow_and_update() >= current {
                    return true;
                }
                if fresh.changed().await.is_err() {
                    return false;
                }
            }
        };
        if !tokio::time::timeout(deadline, caught_up)
            .await
            .unwrap_or(false)
        {
            return None;
        }
        let st = self.state.lock();
        if st.failed.is_some() {
            return None;
        }
        Some(super::list::page(&st.objects, st.revision, prefix, opts))
    }

    /// A watch served from memory, or `None` when `after` is older than the window.
    pub(super) async fn watch(&self, prefix: &str, after: Revision) -> Result<Option<WatchStream>> {
        let current = self.inner.current_revision().await?;
        let after = if after == 0 { current } else { after };
        if after > current {
            return Err(Error::FutureRevision {
                requested: after,
                current,
            });
        }
        let mut st = self.state.lock();
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        if after < st.window_start {
            return Ok(None);
        }
        let replay: Vec<Result<Event>> = st
            .history
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
            .cloned()
            .map(Ok)
            .collect();
        let (tx, rx) = mpsc::channel(self.config.watcher_buffer.max(1));
        let ending = Arc::new(Mutex::new(None));
        st.watchers.push(Watcher {
            prefix: prefix.to_string(),
            after,
            tx,
            ending: ending.clone(),
        });
        let live = ReceiverStream::new(rx).map(Ok);
        let tail = futures::stream::once(async move { ending.lock().take() })
            .filter_map(|e| async move { e.map(Err) });
        Ok(Some(
            futures::stream::iter(replay)
                .chain(live)
                .chain(tail)
                .boxed(),
        ))
    }
}

/// The upstream watch of `root` after `start`, with progress reports when the backend
/// has them. A SQLite snapshot may show a commit a moment before the writer publishes
/// its revision to watches, so a watch at the list's revision waits that moment out.
async fn watch_upstream(
    inner: &dyn Store,
    root: &str,
    start: Revision,
) -> Result<(ProgressStream, bool)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let watched = match inner.watch_progress(root, start).await {
            Ok(Some(stream)) => Ok((stream, true)),
            Ok(None) => inner.watch(root, start).await.map(|stream| {
                let items = stream.map(|r| r.map(WatchItem::Event)).boxed();
                (items, false)
            }),
            Err(e) => Err(e),
        };
        match watched {
            Err(Error::FutureRevision { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            other => return other,
        }
    }
}
