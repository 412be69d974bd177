//! The cache of one resource type: its upstream watch, the objects as of the latest
//! event, the window of recent events and the watchers it feeds.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use parking_lot::Mutex;

use super::CacheConfig;
use crate::live::{Follower, Live, Log};
use crate::{
    Error, Event, EventKind, KeyValue, ListOptions, ListResult, ProgressStream, Result, Revision,
    Store, WatchItem, WatchStream,
};

/// Most upstream items taken in one wake-up.
const MAX_READY: usize = 1024;

pub(super) struct ResourceCache {
    inner: Arc<dyn Store>,
    config: CacheConfig,
    /// Whether the upstream watch reports progress; without it the cache only knows
    /// it is current at the revisions of its own events.
    progress: bool,
    state: Mutex<State>,
    /// The revision `state.objects` reflects, for lists waiting to be served.
    fresh: tokio::sync::watch::Sender<Revision>,
    /// Why the upstream watch ended, for the watchers' streams to end with.
    failure: Arc<Mutex<Option<Error>>>,
    /// Live events for the watchers, which each read this one log themselves rather
    /// than being sent a copy: with a thousand watchers, per-watcher sends were the
    /// cost of delivery. Closed when the upstream watch ends, which ends them.
    live: Arc<Log>,
}

struct State {
    /// Every object under the root, sharing its value with the history.
    objects: BTreeMap<String, KeyValue>,
    /// The revision `objects` is the state at.
    revision: Revision,
    /// Every event under the root after `window_start`, in revision order.
    history: VecDeque<Arc<Event>>,
    window_start: Revision,
    /// Why the upstream watch ended; the cache is then replaced on next use.
    failed: Option<Error>,
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
            failure: Arc::new(Mutex::new(None)),
            live: Log::new(config.watcher_buffer),
            state: Mutex::new(State {
                objects,
                revision: start,
                history: VecDeque::new(),
                window_start: start,
                failed: None,
            }),
            fresh: tokio::sync::watch::Sender::new(start),
        });
        tokio::spawn(cache.clone().pump(upstream));
        Ok(cache)
    }

    /// The object at `key` as the cache last saw it (possibly behind the store), or
    /// `None` when the cache does not hold it or has failed.
    pub(super) fn get(&self, key: &str) -> Option<KeyValue> {
        let st = self.state.lock();
        st.failed.is_none().then(|| st.objects.get(key).cloned())?
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
        // Everything the upstream has ready goes in under one lock and out to the
        // watchers with one wake-up.
        let closed = || Error::WatchClosed {
            reason: "the store's watch ended".into(),
        };
        let ended = loop {
            let Some((items, upstream_ended)) = next_ready(&mut upstream).await else {
                break closed();
            };
            let mut events = Vec::with_capacity(items.len());
            let mut progress = None;
            let mut failed = None;
            for item in items {
                match item {
                    Ok(WatchItem::Event(event)) => events.push(event),
                    Ok(WatchItem::Progress(revision)) => progress = Some(revision),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            self.deliver(events, progress);
            if let Some(e) = failed {
                break e;
            }
            if upstream_ended {
                break closed();
            }
        };
        tracing::debug!(error = %ended, "watch cache restarts on next use");
        *self.failure.lock() = Some(ended.clone());
        self.state.lock().failed = Some(ended);
        // Watchers get what was sent, then the end of the log.
        self.live.close();
        // Waiting lists wake up and go to the backend.
        self.fresh.send_modify(|_| {});
    }

    /// Applies upstream events (and a progress report after them) to the cache and
    /// hands the events to the watchers.
    fn deliver(&self, events: Vec<Arc<Event>>, progress: Option<Revision>) {
        let mut st = self.state.lock();
        for event in &events {
            match event.kind {
                EventKind::Create | EventKind::Update => {
                    st.objects.insert(event.kv.key.clone(), event.kv.clone());
                }
                EventKind::Delete => {
                    st.objects.remove(&event.kv.key);
                }
            }
            st.revision = st.revision.max(event.revision());
            st.history.push_back(event.clone());
            if st.history.len() > self.config.history
                && let Some(old) = st.history.pop_front()
            {
                st.window_start = old.revision();
            }
        }
        st.revision = st.revision.max(progress.unwrap_or(0));
        let now = st.revision;
        drop(st);
        // Published outside the lock, as waking the watchers takes a while. A watcher
        // that starts in between finds these events in the history too, and skips the
        // live copies by their revision; only this task publishes, so the order holds.
        if !events.is_empty() {
            self.live.publish(events);
        }
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
        let st = self.state.lock();
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        if after < st.window_start {
            return Ok(None);
        }
        let replay: VecDeque<Arc<Event>> = st
            .history
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        // Live events up to the last one in the history are in the replay already.
        let last = st.history.back().map_or(after, |e| e.revision()).max(after);
        let live = self.live.follow(prefix, last);
        drop(st);
        Ok(Some(
            CacheWatch {
                replay,
                live,
                capacity: self.config.watcher_buffer,
                failure: self.failure.clone(),
                ended: false,
            }
            .boxed(),
        ))
    }
}

/// One watcher of the cache: the history it asked for, then the live log.
struct CacheWatch {
    replay: VecDeque<Arc<Event>>,
    live: Follower,
    capacity: usize,
    failure: Arc<Mutex<Option<Error>>>,
    ended: bool,
}

impl Stream for CacheWatch {
    type Item = Result<Arc<Event>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let w = self.get_mut();
        if let Some(ev) = w.replay.pop_front() {
            return Poll::Ready(Some(Ok(ev)));
        }
        if w.ended {
            return Poll::Ready(None);
        }
        match w.live.poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Live::Event(ev)) => Poll::Ready(Some(Ok(ev))),
            Poll::Ready(Live::Lagged(_)) => {
                w.ended = true;
                let capacity = w.capacity;
                Poll::Ready(Some(Err(Error::WatchClosed {
                    reason: format!(
                        "watcher too slow: more than {capacity} events behind; watch again"
                    ),
                })))
            }
            Poll::Ready(Live::Closed) => {
                w.ended = true;
                Poll::Ready(w.failure.lock().clone().map(Err))
            }
        }
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

/// The upstream's next item and whatever else it has ready, at most [`MAX_READY`], and
/// whether it ended after them; `None` when it ended first. (Not `ready_chunks`, which
/// reserves room for a whole chunk on every wake-up: ~50 KB for the one or few events
/// a write brings.)
async fn next_ready(upstream: &mut ProgressStream) -> Option<(Vec<Result<WatchItem>>, bool)> {
    let mut items = vec![upstream.next().await?];
    while items.len() < MAX_READY {
        match upstream.next().now_or_never() {
            Some(Some(item)) => items.push(item),
            Some(None) => return Some((items, true)),
            None => break,
        }
    }
    Some((items, false))
}
