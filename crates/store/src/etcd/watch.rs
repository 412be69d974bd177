//! Watches: one etcd watch per call (on the stream the hub shares), started at
//! `after + 1` with previous values, as kube-apiserver's etcd3 watcher does. The call
//! returns only once etcd has confirmed the watch, so a write made after it returns is
//! always seen.

use std::sync::Arc;

use bytes::Bytes;
use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::EtcdStore;
use super::hub::{CloseReason, Command};
use super::kv::{prefix_end, to_kv};
use crate::{Error, Event, EventKind, KeyValue, Result, Revision, WatchStream};

/// etcd's watch event, as the store's. A delete carries the last value the key had
/// (from `prev_kv`) with the revision of the delete.
fn to_event(ev: &etcd_client::Event) -> Option<Event> {
    let kv = to_kv(ev.kv()?);
    let prev = ev.prev_kv().map(to_kv);
    Some(match ev.event_type() {
        EventType::Put if kv.create_revision == kv.mod_revision => Event {
            kind: EventKind::Create,
            kv,
            prev: None,
        },
        EventType::Put => Event {
            kind: EventKind::Update,
            kv,
            prev,
        },
        EventType::Delete => {
            // Without prev_kv (history compacted under the watch) only the key is known.
            let last = prev.clone().unwrap_or(KeyValue {
                value: Bytes::new(),
                ..kv.clone()
            });
            Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    mod_revision: kv.mod_revision,
                    ..last
                },
                prev,
            }
        }
    })
}

/// The events of one etcd watch response, as the store's.
pub(super) fn convert(resp: &WatchResponse) -> Vec<Event> {
    resp.events().iter().filter_map(to_event).collect()
}

/// Cancels the watch on etcd when its stream is dropped.
struct CancelOnDrop {
    id: i64,
    hub: mpsc::UnboundedSender<Command>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let _ = self.hub.send(Command::Cancel(self.id));
    }
}

/// Where a running watch is.
struct State {
    events: mpsc::Receiver<Event>,
    closed: CloseReason,
    /// The revision of the last event delivered (or the start point).
    last: Revision,
    done: bool,
    _cancel: CancelOnDrop,
}

impl EtcdStore {
    pub(super) async fn watch_prefix(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // etcd accepts a compacted start and cancels the watch a moment later, and waits
        // quietly on a future one. A read at `after` answers both questions now, so the
        // caller gets the error from `watch` itself, as from every other backend.
        if after > 0 {
            let probe = GetOptions::new().with_revision(after).with_count_only();
            if let Err(e) = self.range(prefix.as_bytes().to_vec(), probe).await {
                return Err(self.revision_error(&e, prefix, after).await);
            }
        }
        let key = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let mut options = WatchOptions::new()
            .with_range(prefix_end(prefix.as_bytes()))
            .with_prev_key();
        if after > 0 {
            options = options.with_start_revision(after + 1);
        }
        let stopped = || {
            Error::Unavailable(format!(
                "the watch on the etcd datastore at {} has stopped",
                self.endpoints
            ))
        };
        let (reply, created) = oneshot::channel();
        self.hub
            .send(Command::Create {
                key,
                options,
                reply,
            })
            .map_err(|_| stopped())?;
        // Waiting for etcd's confirmation makes every later write visible to the watch.
        let registered = tokio::time::timeout(super::REQUEST_TIMEOUT, created)
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "the etcd datastore at {} did not confirm a watch on {prefix} in time",
                    self.endpoints
                ))
            })?
            .map_err(|_| stopped())??;
        let state = State {
            last: if after > 0 {
                after
            } else {
                registered.revision
            },
            events: registered.events,
            closed: registered.closed,
            done: false,
            _cancel: CancelOnDrop {
                id: registered.id,
                hub: self.hub.clone(),
            },
        };
        let endpoints = self.endpoints.clone();
        Ok(futures::stream::unfold(state, move |mut st| {
            let endpoints = endpoints.clone();
            async move {
                if st.done {
                    return None;
                }
                if let Some(ev) = st.events.recv().await {
                    st.last = ev.revision();
                    return Some((Ok(Arc::new(ev)), st));
                }
                // The queue is drained and closed: say why, then end.
                st.done = true;
                let err = match st.closed.lock().take() {
                    Some(Error::Compacted { compacted, .. }) => Error::Compacted {
                        requested: st.last,
                        compacted,
                    },
                    Some(e) => e,
                    None => Error::Unavailable(format!(
                        "the watch on the etcd datastore at {endpoints} has stopped"
                    )),
                };
                Some((Err(err), st))
            }
        })
        .boxed())
    }
}
