//! The single writer: a thread that owns the write connection and commits queued
//! writes in batches, one transaction (one WAL sync) per batch, so concurrent writers
//! share the cost of durability (group commit). After each commit it publishes the
//! batch's events to watchers, in revision order.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::live::Log;
use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;

pub enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    /// Compaction step: removes superseded history up to `revision` in the window of
    /// `budget` rows after id `after`.
    Compact {
        revision: Revision,
        after: i64,
        budget: usize,
    },
    Checkpoint,
}

pub struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Reply>>,
}

pub enum Reply {
    Written(KeyValue),
    /// Compaction: where the next step starts, `None` when the pass is done.
    Compacted {
        next: Option<i64>,
    },
    Done,
}

pub struct Writer {
    conn: Connection,
    events: Arc<Log>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
}

/// The row of a key's live version.
struct Live {
    id: i64,
    create_revision: i64,
    value: Vec<u8>,
}

fn live(tx: &Connection, key: &str) -> rusqlite::Result<Option<Live>> {
    tx.prepare_cached(
        "SELECT log.id, log.create_revision, log.value FROM current JOIN log ON log.id = current.id WHERE current.name = ?1",
    )?
    .query_row([key], |r| Ok(Live { id: r.get(0)?, create_revision: r.get(1)?, value: r.get(2)? }))
    .optional()
}

impl Writer {
    pub fn new(
        conn: Connection,
        events: Arc<Log>,
        revision: Arc<AtomicI64>,
        compacted: Arc<AtomicI64>,
    ) -> Self {
        Self {
            conn,
            events,
            revision,
            compacted,
        }
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        // The store is gone: its watches end once they have what was committed.
        self.events.close();
    }

    fn commit(&mut self, batch: Vec<Request>) {
        let mut outcomes: Vec<Result<Reply>> = Vec::with_capacity(batch.len());
        let mut events: Vec<Event> = Vec::new();
        // BEGIN and COMMIT through the statement cache: rusqlite's `Transaction` runs
        // them with `execute_batch`, which parses them again on every batch.
        let result = (|| -> rusqlite::Result<()> {
            let conn = &self.conn;
            conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            for req in &batch {
                let outcome = apply(conn, &req.op, &self.compacted, &mut events)?;
                outcomes.push(outcome);
            }
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(())
        })();
        if let Err(e) = result {
            if !self.conn.is_autocommit()
                && let Err(e) = self.conn.execute_batch("ROLLBACK")
            {
                tracing::error!(error = %e, "store rollback failed");
            }
            // The transaction rolled back: nothing of this batch happened.
            tracing::error!(error = %e, "store commit failed");
            for req in batch {
                let _ = req
                    .reply
                    .send(Err(Error::Internal(format!("sqlite commit failed: {e}"))));
            }
            return;
        }
        if batch.iter().any(|r| matches!(r.op, Op::Checkpoint)) {
            // Outside any transaction: fold the WAL back into the database file.
            if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
        if let Some(last) = events.last() {
            self.revision.store(last.revision(), Ordering::SeqCst);
        }
        if !events.is_empty() {
            self.events.publish(events.into_iter().map(Arc::new));
        }
        for (req, outcome) in batch.into_iter().zip(outcomes) {
            let _ = req.reply.send(outcome);
        }
    }
}

/// Applies one operation inside the batch's transaction. A failed precondition is an
/// `Ok(Err(..))` outcome for that request; only SQLite errors abort the batch.
fn apply(
    tx: &Connection,
    op: &Op,
    compacted: &AtomicI64,
    events: &mut Vec<Event>,
) -> rusqlite::Result<Result<Reply>> {
    match op {
        Op::Create { key, value } => {
            if live(tx, key)?.is_some() {
                return Ok(Err(Error::AlreadyExists { key: key.clone() }));
            }
            let id = append(tx, key, false, None, 0, value, None)?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: id,
                mod_revision: id,
            };
            events.push(Event {
                kind: EventKind::Create,
                kv: kv.clone(),
                prev: None,
            });
            Ok(Ok(Reply::Written(kv)))
        }
        Op::Update {
            key,
            value,
            expected,
        } => {
            let Some(cur) = live(tx, key)? else {
                return Ok(Err(Error::NotFound { key: key.clone() }));
            };
            if cur.id != *expected {
                return Ok(Err(Error::Conflict {
                    key: key.clone(),
                    expected: *expected,
                    actual: cur.id,
                }));
            }
            let id = append(
                tx,
                key,
                false,
                Some(cur.create_revision),
                cur.id,
                value,
                Some(&cur.value),
            )?;
            let prev = KeyValue {
                key: key.clone(),
                value: Bytes::from(cur.value),
                create_revision: cur.create_revision,
                mod_revision: cur.id,
            };
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: cur.create_revision,
                mod_revision: id,
            };
            events.push(Event {
                kind: EventKind::Update,
                kv: kv.clone(),
                prev: Some(prev),
            });
            Ok(Ok(Reply::Written(kv)))
        }
        Op::Delete { key, expected } => {
            let Some(cur) = live(tx, key)? else {
                return Ok(Err(Error::NotFound { key: key.clone() }));
            };
            if let Some(e) = expected
                && cur.id != *e
            {
                return Ok(Err(Error::Conflict {
                    key: key.clone(),
                    expected: *e,
                    actual: cur.id,
                }));
            }
            let old = Bytes::from(cur.value);
            let id = append(
                tx,
                key,
                true,
                Some(cur.create_revision),
                cur.id,
                &old,
                Some(&old),
            )?;
            let prev = KeyValue {
                key: key.clone(),
                value: old.clone(),
                create_revision: cur.create_revision,
                mod_revision: cur.id,
            };
            let kv = KeyValue {
                key: key.clone(),
                value: old,
                create_revision: cur.create_revision,
                mod_revision: id,
            };
            events.push(Event {
                kind: EventKind::Delete,
                kv: kv.clone(),
                prev: Some(prev),
            });
            Ok(Ok(Reply::Written(kv)))
        }
        Op::Compact {
            revision,
            after,
            budget,
        } => {
            let next = super::compact::step(tx, *revision, *after, *budget)?;
            let prior = compacted.load(Ordering::SeqCst);
            if *revision > prior {
                tx.execute("INSERT INTO meta (key, value) VALUES ('compact_revision', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [revision])?;
                compacted.store(*revision, Ordering::SeqCst);
            }
            Ok(Ok(Reply::Compacted { next }))
        }
        Op::Checkpoint => Ok(Ok(Reply::Done)),
    }
}

/// Appends one log row and points `current` at it (or removes the key for a delete).
#[allow(clippy::too_many_arguments)]
fn append(
    tx: &Connection,
    key: &str,
    deleted: bool,
    create_revision: Option<i64>,
    prev_revision: i64,
    value: &[u8],
    old_value: Option<&[u8]>,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO log (name, deleted, create_revision, prev_revision, value, old_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![key, deleted, create_revision.unwrap_or(0), prev_revision, value, old_value])?;
    let id = tx.last_insert_rowid();
    if create_revision.is_none() {
        tx.prepare_cached("UPDATE log SET create_revision = ?1 WHERE id = ?1")?
            .execute([id])?;
    }
    if deleted {
        tx.prepare_cached("DELETE FROM current WHERE name = ?1")?
            .execute([key])?;
    } else {
        tx.prepare_cached(
            "INSERT INTO current (name, id) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET id = excluded.id",
        )?
        .execute(params![key, id])?;
    }
    Ok(id)
}
