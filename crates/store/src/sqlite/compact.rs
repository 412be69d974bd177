//! Compaction: history older than the compaction revision is dropped, except the
//! latest live version of each key. A pass walks the log from the start in windows of
//! `budget` rows, one small write transaction each, so it never holds writers up for
//! long; the rows it keeps (one per live key) are revisited by later passes.

use rusqlite::{Connection, OptionalExtension, params};

/// Compacts the window of up to `budget` rows after id `after` (ids ≤ `revision`).
/// Returns the id to continue after, or `None` when the pass is done.
pub fn step(
    tx: &Connection,
    revision: i64,
    after: i64,
    budget: usize,
) -> rusqlite::Result<Option<i64>> {
    let end: Option<i64> = tx
        .query_row(
            "SELECT MAX(id) FROM (SELECT id FROM log WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3)",
            params![after, revision, budget as i64],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let Some(end) = end else { return Ok(None) };
    tx.execute(
        "DELETE FROM log WHERE id > ?1 AND id <= ?2 AND (
             deleted = 1
             OR EXISTS (SELECT 1 FROM log newer WHERE newer.name = log.name AND newer.id > log.id AND newer.id <= ?3)
         )",
        params![after, end, revision],
    )?;
    Ok(Some(end))
}
