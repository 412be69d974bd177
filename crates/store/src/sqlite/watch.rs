//! Watches: history replayed from the log, then the writer's live events, with no gap
//! and no duplicate between the two. A watcher that falls too far behind the live
//! stream is ended with a clear reason instead of holding memory or the writer back.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use rusqlite::{Connection, params};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::read::ReadPool;
use crate::{Error, Event, EventKind, KeyValue, ProgressStream, Result, Revision, WatchItem};

/// History rows read per page while replaying.
const PAGE: i64 = 1000;
/// Events buffered for one watcher before the replay task waits on it.
const BUFFER: usize = 1024;

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
    let mut rx = live.subscribe();
    let current = revision.load(Ordering::SeqCst);
    let start = if after == 0 { current } else { after };
    let prefix = prefix.to_string();
    let (tx, out) = mpsc::channel::<Result<WatchItem>>(BUFFER);
    tokio::spawn(async move {
        let mut last = start;
        // Replay history up to what the writer had committed when we subscribed.
        let upto = current.max(start);
        while last < upto {
            let p = prefix.clone();
            let from = last;
            let page = reads.with(move |c| history(c, &p, from, upto)).await;
            match page {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    for ev in events {
                        last = ev.revision();
                        if tx.send(Ok(WatchItem::Event(ev))).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
            if last < upto && last == from {
                break;
            }
        }
        last = last.max(upto);
        // The last write seen (under any prefix) and the last one reported as progress.
        let (mut seen, mut reported) = (last, start);
        loop {
            if progress && seen > reported && rx.is_empty() {
                reported = seen;
                if tx.send(Ok(WatchItem::Progress(seen))).await.is_err() {
                    return;
                }
            }
            match rx.recv().await {
                Ok(ev) => {
                    seen = seen.max(ev.revision());
                    if ev.revision() <= last || !ev.kv.key.starts_with(&prefix) {
                        continue;
                    }
                    last = ev.revision();
                    if tx.send(Ok(WatchItem::Event((*ev).clone()))).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let reason = format!(
                        "the watcher fell {n} events behind and was closed; restart the watch from its last revision"
                    );
                    let _ = tx.send(Err(Error::WatchClosed { reason })).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(ReceiverStream::new(out).boxed())
}
