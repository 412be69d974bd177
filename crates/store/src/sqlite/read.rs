//! Reads: a small pool of connections, each read a snapshot (one read transaction)
//! that also reports the revision it saw.

use std::path::PathBuf;

use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, KeyValue, ListOptions, ListResult, Result, Revision};

pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

fn internal(e: rusqlite::Error) -> Error {
    Error::Internal(format!("sqlite: {e}"))
}

/// The smallest string greater than every key starting with `prefix`.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl ReadPool {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a pooled connection off the async threads.
    pub async fn with<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.idle.lock().pop();
            let mut conn = match conn {
                Some(c) => c,
                None => {
                    let c = Connection::open(&pool.path).map_err(internal)?;
                    super::schema::configure(&c).map_err(internal)?;
                    c
                }
            };
            let out = f(&mut conn);
            let mut idle = pool.idle.lock();
            if idle.len() < 8 {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }
}

// Reads go through the statement cache: these run on every request.
pub fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>> {
    conn.prepare_cached(
        "SELECT log.id, log.create_revision, log.value FROM current JOIN log ON log.id = current.id WHERE current.name = ?1",
    )
    .map_err(internal)?
    .query_row(
        [key],
        |r| {
            Ok(KeyValue {
                key: key.to_string(),
                mod_revision: r.get(0)?,
                create_revision: r.get(1)?,
                value: Bytes::from(r.get::<_, Vec<u8>>(2)?),
            })
        },
    )
    .optional()
    .map_err(internal)
}

/// The latest revision as this connection's snapshot sees it.
pub fn revision(conn: &Connection) -> rusqlite::Result<Revision> {
    Ok(conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'log'")?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0))
}

pub fn compacted(conn: &Connection) -> rusqlite::Result<Revision> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'compact_revision'")?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()?
        .unwrap_or(0))
}

pub fn list(conn: &mut Connection, prefix: &str, opts: &ListOptions) -> Result<ListResult> {
    let tx = conn.transaction().map_err(internal)?;
    let current = revision(&tx).map_err(internal)?;
    let at = if opts.revision == 0 {
        current
    } else {
        opts.revision
    };
    if opts.revision != 0 {
        let compacted = compacted(&tx).map_err(internal)?;
        if at < compacted {
            return Err(Error::Compacted {
                requested: at,
                compacted,
            });
        }
        if at > current {
            return Err(Error::FutureRevision {
                requested: at,
                current,
            });
        }
    }
    let start = match &opts.continue_after {
        Some(after) if after.as_str() >= prefix => after.clone(),
        _ => String::new(),
    };
    let end = prefix_end(prefix).unwrap_or_else(|| "\u{10FFFF}".repeat(2));
    let limit: i64 = if opts.limit == 0 {
        -1
    } else {
        opts.limit as i64 + 1
    };
    let rows: Vec<KeyValue> = if opts.revision == 0 {
        let mut stmt = tx
            .prepare_cached(
                "SELECT current.name, log.id, log.create_revision, log.value FROM current JOIN log ON log.id = current.id
                 WHERE current.name >= ?1 AND current.name < ?2 AND current.name > ?3 ORDER BY current.name LIMIT ?4",
            )
            .map_err(internal)?;
        stmt.query_map(params![prefix, end, start, limit], row_kv)
            .map_err(internal)?
            .collect::<rusqlite::Result<_>>()
            .map_err(internal)?
    } else {
        let mut stmt = tx
            .prepare_cached(
                "SELECT log.name, log.id, log.create_revision, log.value FROM log
                 JOIN (SELECT name, MAX(id) AS mid FROM log WHERE name >= ?1 AND name < ?2 AND name > ?3 AND id <= ?4 GROUP BY name) m
                   ON log.id = m.mid
                 WHERE log.deleted = 0 ORDER BY log.name LIMIT ?5",
            )
            .map_err(internal)?;
        stmt.query_map(params![prefix, end, start, at, limit], row_kv)
            .map_err(internal)?
            .collect::<rusqlite::Result<_>>()
            .map_err(internal)?
    };
    let mut items = rows;
    let more = opts.limit > 0 && items.len() > opts.limit;
    let mut remaining = 0;
    if more {
        items.truncate(opts.limit);
        let last = items.last().map(|kv| kv.key.clone()).unwrap_or_default();
        remaining = if opts.revision == 0 {
            tx.query_row("SELECT COUNT(*) FROM current WHERE name > ?1 AND name < ?2", params![last, end], |r| r.get(0))
        } else {
            tx.query_row(
                "SELECT COUNT(*) FROM (SELECT name, MAX(id) AS mid FROM log WHERE name > ?1 AND name < ?2 AND id <= ?3 GROUP BY name) m
                 JOIN log ON log.id = m.mid WHERE log.deleted = 0",
                params![last, end, at],
                |r| r.get(0),
            )
        }
        .map_err(internal)?;
    }
    Ok(ListResult {
        items,
        revision: at,
        more,
        remaining,
    })
}

fn row_kv(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: r.get(0)?,
        mod_revision: r.get(1)?,
        create_revision: r.get(2)?,
        value: Bytes::from(r.get::<_, Vec<u8>>(3)?),
    })
}
