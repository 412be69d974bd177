//! The cache of one resource type: its upstream watch, the window of recent events
//! and the watchers it feeds.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_stream::wrappers::ReceiverStream;

use super::CacheConfig;
use crate::{Error, Event, Result, Revision, Store, WatchStream};

pub(super) struct ResourceCache {
    inner: Arc<dyn Store>,
    config: CacheConfig,
    state: Mutex<State>,
}

struct State {
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
    /// Starts the upstream watch of `root` at the backend's current revision.
    pub(super) async fn start(
        inner: Arc<dyn Store>,
        root: &str,
        config: CacheConfig,
    ) -> Result<Arc<Self>> {
        let start = inner.current_revision().await?;
        let upstream = inner.watch(root, start).await?;
        let cache = Arc::new(Self {
            inner,
            config,
            state: Mutex::new(State {
                history: VecDeque::new(),
                window_start: start,
                watchers: Vec::new(),
                failed: None,
            }),
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

    async fn pump(self: Arc<Self>, mut upstream: WatchStream) {
        let ended = loop {
            match upstream.next().await {
                Some(Ok(event)) => self.deliver(event),
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
        st.history.push_back(event);
        if st.history.len() > self.config.history
            && let Some(old) = st.history.pop_front()
        {
            st.window_start = old.revision();
        }
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
