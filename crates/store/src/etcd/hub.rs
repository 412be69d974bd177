//! All watches of one store share one etcd watch stream, as etcd's Go client shares
//! one per context: a thousand watches are then a thousand watch ids on one gRPC
//! stream rather than a thousand HTTP/2 streams (which servers limit, and whose
//! cancellations as stream resets HTTP/2 implementations treat as abuse).
//!
//! One task owns the stream. It sends create and cancel requests, matches each
//! `created` answer to the oldest create waiting (etcd answers creates in order) and
//! routes events by watch id to each watcher's bounded queue. A watcher whose queue is
//! full is closed with a reason instead of holding the others up; when the stream
//! itself fails, every watcher is closed with the error and the next watch opens a
//! new stream.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use etcd_client::{WatchOptions, WatchRequestSender, WatchResponse, WatchResponseStream};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::pool::{Call, Members};
use crate::{Error, Event, Result, Revision};

/// Events queued for one watcher before it is considered too slow and closed.
pub(super) const WATCHER_BUFFER: usize = 10_000;

/// Why a watcher's queue ended, read by the watcher once it has drained the queue.
pub(super) type CloseReason = Arc<Mutex<Option<Error>>>;

/// What the hub hands a new watcher.
pub(super) struct Registered {
    pub id: i64,
    /// The revision etcd was at when it created the watch.
    pub revision: Revision,
    pub events: mpsc::Receiver<Event>,
    pub closed: CloseReason,
}

pub(super) enum Command {
    Create {
        key: Vec<u8>,
        options: WatchOptions,
        /// Maps etcd's events to the store's (kept out of the hub so it stays generic).
        reply: oneshot::Sender<Result<Registered>>,
    },
    Cancel(i64),
}

struct Route {
    events: mpsc::Sender<Event>,
    closed: CloseReason,
}

struct Pending {
    reply: oneshot::Sender<Result<Registered>>,
}

/// Starts the hub task; it ends when every sender of commands is gone.
pub(super) fn spawn(
    members: Arc<Members>,
    endpoints: String,
    convert: fn(&WatchResponse) -> Vec<Event>,
) -> mpsc::UnboundedSender<Command> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        Hub {
            members,
            endpoints,
            convert,
            stream: None,
            pending: VecDeque::new(),
            routes: HashMap::new(),
            overflowed: Vec::new(),
        }
        .run(rx),
    );
    tx
}

struct Hub {
    members: Arc<Members>,
    endpoints: String,
    convert: fn(&WatchResponse) -> Vec<Event>,
    stream: Option<(WatchRequestSender, WatchResponseStream)>,
    pending: VecDeque<Pending>,
    routes: HashMap<i64, Route>,
    /// Watches closed for falling behind, still to be cancelled on etcd.
    overflowed: Vec<i64>,
}

impl Hub {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            let next = match &mut self.stream {
                Some((_, responses)) => tokio::select! {
                    c = commands.recv() => Step::Command(c),
                    r = responses.message() => Step::Response(r),
                },
                None => Step::Command(commands.recv().await),
            };
            match next {
                Step::Command(None) => return,
                Step::Command(Some(c)) => self.command(c).await,
                Step::Response(Ok(Some(resp))) => {
                    self.response(resp);
                    for id in std::mem::take(&mut self.overflowed) {
                        if let Some((requests, _)) = &mut self.stream {
                            // A failure here surfaces on the response side.
                            let _ = requests.cancel(id).await;
                        }
                    }
                }
                Step::Response(Ok(None)) => {
                    let msg = format!(
                        "the etcd datastore at {} ended the watch stream",
                        self.endpoints
                    );
                    self.fail(Error::Unavailable(msg));
                }
                Step::Response(Err(e)) => {
                    let err = super::errors::classify(&e, &self.endpoints).into_error("", 0);
                    self.fail(err);
                }
            }
        }
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Create {
                key,
                options,
                reply,
            } => {
                if self.stream.is_none() {
                    match self.open(key.clone(), options.clone()).await {
                        Ok(stream) => {
                            self.stream = Some(stream);
                            self.pending.push_back(Pending { reply });
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                    return;
                }
                let (requests, _) = self.stream.as_mut().expect("checked above");
                match requests.watch(key, Some(options)).await {
                    Ok(()) => self.pending.push_back(Pending { reply }),
                    Err(e) => {
                        let err = super::errors::classify(&e, &self.endpoints).into_error("", 0);
                        let _ = reply.send(Err(err.clone()));
                        self.fail(err);
                    }
                }
            }
            Command::Cancel(id) => {
                if self.routes.remove(&id).is_some()
                    && let Some((requests, _)) = &mut self.stream
                {
                    // A failure here surfaces on the response side of the stream.
                    let _ = requests.cancel(id).await;
                }
            }
        }
    }

    /// Opens the shared stream with its first watch, moving to another member if the
    /// pinned one cannot be reached.
    async fn open(
        &self,
        key: Vec<u8>,
        options: WatchOptions,
    ) -> Result<(WatchRequestSender, WatchResponseStream)> {
        self.members
            .run(Call::Idempotent, |client| {
                let (key, options) = (key.clone(), options.clone());
                async move {
                    let mut watch = client
                        .watch_client()
                        .max_decoding_message_size(super::MAX_RESPONSE_BYTES);
                    watch.watch(key, Some(options)).await
                }
            })
            .await
            .map(etcd_client::WatchStream::split)
            .map_err(|e| super::errors::classify(&e, &self.endpoints).into_error("", 0))
    }

    fn response(&mut self, resp: WatchResponse) {
        let id = resp.watch_id();
        if resp.created() {
            let Some(pending) = self.pending.pop_front() else {
                return;
            };
            if resp.canceled() {
                let reason = format!("etcd refused the watch: {}", resp.cancel_reason());
                let _ = pending.reply.send(Err(Error::WatchClosed { reason }));
                return;
            }
            let (events, rx) = mpsc::channel(WATCHER_BUFFER);
            let closed = CloseReason::default();
            let registered = Registered {
                id,
                revision: resp.header().map(|h| h.revision()).unwrap_or_default(),
                events: rx,
                closed: closed.clone(),
            };
            if pending.reply.send(Ok(registered)).is_ok() {
                self.routes.insert(id, Route { events, closed });
            }
            // A create answer may carry events too.
            if resp.events().is_empty() {
                return;
            }
        }
        let Some(route) = self.routes.get(&id) else {
            return;
        };
        for event in (self.convert)(&resp) {
            match route.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let reason = format!(
                        "the watcher fell {WATCHER_BUFFER} events behind and was closed; restart the watch from its last revision"
                    );
                    self.close(id, Error::WatchClosed { reason });
                    self.overflowed.push(id);
                    return;
                }
                // The watcher is gone; its drop sends the cancel.
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        if resp.canceled() {
            let err = if resp.compact_revision() > 0 {
                Error::Compacted {
                    requested: 0,
                    compacted: resp.compact_revision(),
                }
            } else {
                Error::WatchClosed {
                    reason: format!("etcd cancelled the watch: {}", resp.cancel_reason()),
                }
            };
            self.close(id, err);
        }
    }

    /// Ends one watcher's queue with `err` as the reason.
    fn close(&mut self, id: i64, err: Error) {
        if let Some(route) = self.routes.remove(&id) {
            *route.closed.lock() = Some(err);
        }
    }

    /// The stream failed: every watcher and waiting create hears why.
    fn fail(&mut self, err: Error) {
        for (_, route) in self.routes.drain() {
            *route.closed.lock() = Some(err.clone());
        }
        for pending in self.pending.drain(..) {
            let _ = pending.reply.send(Err(err.clone()));
        }
        self.stream = None;
    }
}

enum Step {
    Command(Option<Command>),
    Response(std::result::Result<Option<WatchResponse>, etcd_client::Error>),
}
