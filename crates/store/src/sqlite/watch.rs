//! Watches: history replayed from the log, then the writer's live events, with no gap
//! and no duplicate between the two. A watcher that falls too far behind the live
//! stream is ended with a clear reason instead of holding memory or the writer back.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use rusqlite::{Connection, params};

use super::read::ReadPool;
use crate::live::{Follower, Live, Log};
use crate::{Error, Event, EventKind, KeyValue, ProgressStream, Result, Revision, WatchItem};

/// History rows read per page while replaying.
const PAGE: i64 = 1000;

fn internal(e: rusqlite::Error) -> Error {
    Error::Internal(format!("sqlite: {e}"))
}

/// Log rows with ids in (after, upto] under `prefix`, as events, at most one page.
/// Fails if compaction has removed history after `after` meanwhile.
fn history(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    upto: Revision,
) -> Result<Vec<Event>> {
    let tx = conn.transaction().map_err(internal)?;
    let compacted = super::read::compacted(&tx).map_err(internal)?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, name, deleted, create_revision, prev_revision, value, old_value FROM log
             WHERE id > ?1 AND id <= ?2 AND substr(name, 1, ?3) = ?4 ORDER BY id LIMIT ?5",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(
            params![after, upto, prefix.chars().count() as i64, prefix, PAGE],
            |r| {
                let id: i64 = r.get(0)?;
                let key: String = r.get(1)?;
                let deleted: bool = r.get(2)?;
                let create_revision: i64 = r.get(3)?;
                let prev_revision: i64 = r.get(4)?;
                let value = Bytes::from(r.get::<_, Vec<u8>>(5)?);
                let old: Option<Vec<u8>> = r.get(6)?;
                let prev = old.map(|o| KeyValue {
                    key: key.clone(),
                    value: Bytes::from(o),
                    create_revision,
                    mod_revision: prev_revision,
                });
                let kind = match (deleted, prev_revision) {
                    (true, _) => EventKind::Delete,
                    (false, 0) => EventKind::Create,
                    _ => EventKind::Update,
                };
                Ok(Event {
                    kind,
                    kv: KeyValue {
                        key,
                        value,
                        create_revision,
                        mod_revision: id,
                    },
                    prev,
                })
            },
        )
        .map_err(internal)?;
    let events = rows.collect::<rusqlite::Result<_>>().map_err(internal);
    drop(stmt);
    events
}

/// The watch of `prefix` after `after`; with `progress`, it also reports the revision
/// of the last write it has seen whenever it has caught up with the writer.
///
/// The stream reads the writer's log itself rather than through a forwarding task and
/// channel: with a thousand watchers that hop doubled the task wake-ups per event, and
/// the fan-out, not the commit, is what delays delivery.
pub fn watch(
    reads: Arc<ReadPool>,
    live: &Arc<Log>,
    prefix: &str,
    after: Revision,
    revision: &AtomicI64,
    compacted: Revision,
    progress: bool,
) -> Result<ProgressStream> {
    if after != 0 && after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    // Follow the log before reading the revision: every event after it then arrives
    // live, everything up to it is in the database.
    let mut follower = live.follow(prefix, 0);
    let current = revision.load(Ordering::SeqCst);
    let start = if after == 0 { current } else { after };
    follower.last = start;
    Ok(Watch {
        reads,
        prefix: prefix.to_string(),
        progress,
        // Replay history up to what the writer had committed when we subscribed.
        upto: current.max(start),
        replay: VecDeque::new(),
        reading: None,
        replaying: true,
        live: follower,
        reported: start,
        ended: false,
    }
    .boxed())
}

/// The state of one watch: replaying the log, then following the writer.
struct Watch {
    reads: Arc<ReadPool>,
    prefix: String,
    progress: bool,
    /// The last revision the replay covers.
    upto: Revision,
    /// The current page of history.
    replay: VecDeque<Event>,
    /// The read of the next page, while it runs.
    reading: Option<BoxFuture<'static, Result<Vec<Event>>>>,
    replaying: bool,
    /// The writer's events; its `last` is the revision of the last event delivered,
    /// its `seen` the last write seen under any prefix.
    live: Follower,
    /// The last revision reported as progress.
    reported: Revision,
    ended: bool,
}

impl Stream for Watch {
    type Item = Result<WatchItem>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let w = self.get_mut();
        while !w.ended {
            if let Some(ev) = w.replay.pop_front() {
                w.live.last = ev.revision();
                return Poll::Ready(Some(Ok(WatchItem::Event(Arc::new(ev)))));
            }
            if w.replaying {
                if let Some(reading) = w.reading.as_mut() {
                    let read = ready!(reading.as_mut().poll(cx));
                    w.reading = None;
                    match read {
                        Ok(events) if events.is_empty() => w.live.last = w.upto,
                        Ok(events) => w.replay = events.into(),
                        Err(e) => {
                            w.ended = true;
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                    continue;
                }
                if w.live.last >= w.upto {
                    w.replaying = false;
                    w.live.last = w.live.last.max(w.upto);
                    w.live.seen = w.live.last;
                    continue;
                }
                let (p, from, upto) = (w.prefix.clone(), w.live.last, w.upto);
                let reads = w.reads.clone();
                w.reading = Some(Box::pin(async move {
                    reads.with(move |c| history(c, &p, from, upto)).await
                }));
                continue;
            }
            match w.live.poll_next(cx) {
                Poll::Ready(Live::Event(ev)) => return Poll::Ready(Some(Ok(WatchItem::Event(ev)))),
                Poll::Ready(Live::Lagged(n)) => {
                    w.ended = true;
                    let reason = format!(
                        "the watcher fell {n} events behind and was closed; restart the watch from its last revision"
                    );
                    return Poll::Ready(Some(Err(Error::WatchClosed { reason })));
                }
                Poll::Ready(Live::Closed) => w.ended = true,
                Poll::Pending => {
                    // Caught up with the writer: everything up to `seen` is delivered.
                    if w.progress && w.live.seen > w.reported {
                        w.reported = w.live.seen;
                        return Poll::Ready(Some(Ok(WatchItem::Progress(w.reported))));
                    }
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(None)
    }
}
