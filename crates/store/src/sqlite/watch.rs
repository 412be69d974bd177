//! Watches: history replayed from the log, then the writer's live events, with no gap
//! and no duplicate between the two. A watcher that falls too far behind the live
//! stream is ended with a clear reason instead of holding memory or the writer back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use rusqlite::{Connection, params};
use tokio::sync::broadcast;

use super::read::ReadPool;
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
/// The stream reads the writer's broadcast itself rather than through a forwarding
/// task and channel: with a thousand watchers that hop doubled the task wake-ups per
/// event, and the fan-out, not the commit, is what delays delivery.
pub async fn watch(
    reads: Arc<ReadPool>,
    live: &broadcast::Sender<Arc<Event>>,
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
    // Subscribe before reading the revision: every event after it then arrives live,
    // everything up to it is in the log.
    let rx = live.subscribe();
    let current = revision.load(Ordering::SeqCst);
    let start = if after == 0 { current } else { after };
    let state = Watch {
        reads,
        rx,
        prefix: prefix.to_string(),
        progress,
        // Replay history up to what the writer had committed when we subscribed.
        upto: current.max(start),
        replay: VecDeque::new(),
        replaying: true,
        last: start,
        seen: start,
        reported: start,
        ended: false,
    };
    Ok(futures::stream::unfold(state, |mut w| async move {
        let item = w.next().await?;
        Some((item, w))
    })
    .boxed())
}

/// The state of one watch: replaying the log, then following the writer.
struct Watch {
    reads: Arc<ReadPool>,
    rx: broadcast::Receiver<Arc<Event>>,
    prefix: String,
    progress: bool,
    /// The last revision the replay covers.
    upto: Revision,
    /// The current page of history.
    replay: VecDeque<Event>,
    replaying: bool,
    /// The revision of the last event delivered.
    last: Revision,
    /// The last write seen (under any prefix) and the last one reported as progress.
    seen: Revision,
    reported: Revision,
    ended: bool,
}

impl Watch {
    async fn next(&mut self) -> Option<Result<WatchItem>> {
        while !self.ended {
            if let Some(ev) = self.replay.pop_front() {
                self.last = ev.revision();
                return Some(Ok(WatchItem::Event(ev)));
            }
            if self.replaying {
                if self.last >= self.upto {
                    self.replaying = false;
                    self.last = self.last.max(self.upto);
                    self.seen = self.last;
                    continue;
                }
                let (p, from, upto) = (self.prefix.clone(), self.last, self.upto);
                match self.reads.with(move |c| history(c, &p, from, upto)).await {
                    Ok(events) if events.is_empty() => self.last = self.upto,
                    Ok(events) => self.replay = events.into(),
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            if self.progress && self.seen > self.reported && self.rx.is_empty() {
                self.reported = self.seen;
                return Some(Ok(WatchItem::Progress(self.seen)));
            }
            match self.rx.recv().await {
                Ok(ev) => {
                    self.seen = self.seen.max(ev.revision());
                    if ev.revision() <= self.last || !ev.kv.key.starts_with(&self.prefix) {
                        continue;
                    }
                    self.last = ev.revision();
                    return Some(Ok(WatchItem::Event((*ev).clone())));
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.ended = true;
                    let reason = format!(
                        "the watcher fell {n} events behind and was closed; restart the watch from its last revision"
                    );
                    return Some(Err(Error::WatchClosed { reason }));
                }
                Err(broadcast::error::RecvError::Closed) => self.ended = true,
            }
        }
        None
    }
}
