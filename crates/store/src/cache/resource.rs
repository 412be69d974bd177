//! The cache of one resource type: its upstream watch, the objects as of the latest
//! event, the window of recent events and the watchers it feeds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::broadcast;

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
    /// Why the upstream watch ended, for the watchers' streams to end with.
    failure: Arc<Mutex<Option<Error>>>,
}

struct State {
    /// Every object under the root, sharing its value with the history.
    objects: BTreeMap<String, KeyValue>,
    /// The revision `objects` is the state at.
    revision: Revision,
    /// Every event under the root after `window_start`, in revision order.
    history: VecDeque<Arc<Event>>,
    window_start: Revision,
    /// Live events for the watchers, which read this one ring themselves rather than
    /// being sent a copy each: with a thousand watchers, per-watcher sends were the
    /// cost of delivery. Dropped when the upstream watch ends, which ends them.
    live: Option<broadcast::Sender<Arc<Event>>>,
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
        let (live, _) = broadcast::channel(config.watcher_buffer.max(1));
        let cache = Arc::new(Self {
            inner,
            config,
            progress,
            failure: Arc::new(Mutex::new(None)),
            state: Mutex::new(State {
                objects,
                revision: start,
                history: VecDeque::new(),
                window_start: start,
                live: Some(live),
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
        *self.failure.lock() = Some(ended.clone());
        let mut st = self.state.lock();
        // Watchers get what was sent, then the end of the ring.
        st.live = None;
        st.failed = Some(ended);
        drop(st);
        // Waiting lists wake up and go to the backend.
        self.fresh.send_modify(|_| {});
    }

    fn deliver(&self, event: Event) {
        let mut st = self.state.lock();
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
        let event = Arc::new(event);
        st.history.push_back(event.clone());
        if st.history.len() > self.config.history
            && let Some(old) = st.history.pop_front()
        {
            st.window_start = old.revision();
        }
        let sender = st.live.clone();
        drop(st);
        // Sent outside the lock, as waking the watchers takes a while. A watcher that
        // subscribes in between finds this event in the history too, and skips the
        // live copy by its revision; only this task sends, so the order holds.
        if let Some(sender) = sender {
            let _ = sender.send(event);
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
        let replay: VecDeque<Event> = st
            .history
            .iter()
            .filter(|e| e.revision() > after && e.kv.key.starts_with(prefix))
            .map(|e| (**e).clone())
            .collect();
        let Some(live) = st.live.as_ref().map(|l| l.subscribe()) else {
            return Err(Error::Internal("the watch cache has no live events".into()));
        };
        // Live events up to the last one in the history are in the replay already.
        let last = st.history.back().map_or(after, |e| e.revision()).max(after);
        drop(st);
        let watch = CacheWatch {
            replay,
            live,
            prefix: prefix.to_string(),
            last,
            capacity: self.config.watcher_buffer,
            failure: self.failure.clone(),
            ended: false,
        };
        Ok(Some(
            futures::stream::unfold(watch, |mut w| async move {
                let item = w.next().await?;
                Some((item, w))
            })
            .boxed(),
        ))
    }
}

/// One watcher of the cache: the history it asked for, then the live ring.
struct CacheWatch {
    replay: VecDeque<Event>,
    live: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    /// The revision after which live events are new to this watcher.
    last: Revision,
    capacity: usize,
    failure: Arc<Mutex<Option<Error>>>,
    ended: bool,
}

impl CacheWatch {
    async fn next(&mut self) -> Option<Result<Event>> {
        if let Some(ev) = self.replay.pop_front() {
            return Some(Ok(ev));
        }
        while !self.ended {
            match self.live.recv().await {
                Ok(ev) => {
                    if ev.revision() <= self.last || !ev.kv.key.starts_with(&self.prefix) {
                        continue;
                    }
                    self.last = ev.revision();
                    return Some(Ok((*ev).clone()));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.ended = true;
                    let capacity = self.capacity;
                    return Some(Err(Error::WatchClosed {
                        reason: format!(
                            "watcher too slow: more than {capacity} events behind; watch again"
                        ),
                    }));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.ended = true;
                    return self.failure.lock().clone().map(Err);
                }
            }
        }
        None
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
