//! The embedded store: one SQLite file (WAL mode) holding a log of every write, whose
//! row ids are the revisions, as kine does — but with a single group-committing
//! writer, watches fed from the commit path instead of polling, and compaction in
//! small steps.

mod compact;
mod read;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::live::Log;
use crate::{
    Error, KeyValue, ListOptions, ListResult, ProgressStream, Result, Revision, Store, WatchItem,
    WatchStream, check_value_size,
};
use read::ReadPool;
use writer::{Op, Reply, Request, Writer};

/// Live events kept for watchers; a watcher further behind is closed.
const EVENT_BUFFER: usize = 65_536;
/// Rows examined per compaction step (one short write transaction).
const COMPACT_BUDGET: usize = 2_000;

pub struct SqliteStore {
    path: PathBuf,
    writes: std::sync::mpsc::Sender<Request>,
    events: Arc<Log>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
    reads: Arc<ReadPool>,
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

impl SqliteStore {
    /// Opens (or creates) the store file. A damaged or foreign file is refused with an
    /// error naming it; the store never silently starts empty over existing data.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let existed = path.exists()
            && std::fs::metadata(&path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        let conn = Connection::open(&path).map_err(|e| corrupt(&path, e))?;
        if existed {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| corrupt(&path, e))?;
            if check != "ok" {
                return Err(corrupt(&path, check));
            }
        }
        schema::configure(&conn).map_err(|e| corrupt(&path, e))?;
        conn.execute_batch(schema::SCHEMA)
            .map_err(|e| corrupt(&path, e))?;
        let revision = read::revision(&conn).map_err(|e| corrupt(&path, e))?;
        let compacted = read::compacted(&conn).map_err(|e| corrupt(&path, e))?;
        let events = Log::new(EVENT_BUFFER);
        let revision = Arc::new(AtomicI64::new(revision));
        let compacted = Arc::new(AtomicI64::new(compacted));
        let (writes, rx) = std::sync::mpsc::channel();
        let writer = Writer::new(conn, events.clone(), revision.clone(), compacted.clone());
        std::thread::Builder::new()
            .name("k8rs-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Internal(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            reads: Arc::new(ReadPool::new(path.clone())),
            path,
            writes,
            events,
            revision,
            compacted,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit(&self, op: Op) -> Result<Reply> {
        let (reply, rx) = oneshot::channel();
        self.writes
            .send(Request { op, reply })
            .map_err(|_| Error::Unavailable("the store writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the store writer has stopped".into()))?
    }

    async fn write(&self, op: Op) -> Result<KeyValue> {
        match self.submit(op).await? {
            Reply::Written(kv) => Ok(kv),
            _ => Err(Error::Internal("unexpected writer reply".into())),
        }
    }

    /// The watch behind [`Store::watch`] and [`Store::watch_progress`].
    async fn watch_items(
        &self,
        prefix: &str,
        after: Revision,
        progress: bool,
    ) -> Result<ProgressStream> {
        let compacted = self.compacted.load(Ordering::SeqCst);
        let current = self.revision.load(Ordering::SeqCst);
        if after > current {
            return Err(Error::FutureRevision {
                requested: after,
                current,
            });
        }
        watch::watch(
            self.reads.clone(),
            &self.events,
            prefix,
            after,
            &self.revision,
            compacted,
            progress,
        )
    }

    /// Compacts history every `interval` to the revision seen one interval before, as
    /// kube-apiserver's compactor does, then folds the WAL into the database file.
    pub fn spawn_compactor(self: &Arc<Self>, interval: Duration) {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut previous: Option<Revision> = None;
            loop {
                tokio::time::sleep(interval).await;
                let Some(store) = store.upgrade() else { return };
                let now = store.revision.load(Ordering::SeqCst);
                if let Some(target) = previous
                    && let Err(e) = store.compact(target).await
                {
                    tracing::warn!(error = %e, "store compaction failed");
                }
                previous = Some(now);
            }
        });
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.reads.with(move |c| read::get(c, &key)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.reads
            .with(move |c| read::list(c, &prefix, &opts))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        self.write(Op::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        self.write(Op::Update {
            key: key.to_string(),
            value,
            expected,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.write(Op::Delete {
            key: key.to_string(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let items = self.watch_items(prefix, after, false).await?;
        Ok(items
            .filter_map(|item| async move {
                match item {
                    Ok(WatchItem::Event(ev)) => Some(Ok(ev)),
                    Ok(WatchItem::Progress(_)) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .boxed())
    }

    async fn watch_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<Option<ProgressStream>> {
        self.watch_items(prefix, after, true).await.map(Some)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let current = self.revision.load(Ordering::SeqCst);
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        let prior = self.compacted.load(Ordering::SeqCst);
        if revision < prior {
            return Err(Error::Compacted {
                requested: revision,
                compacted: prior,
            });
        }
        let mut after = 0;
        loop {
            match self
                .submit(Op::Compact {
                    revision,
                    after,
                    budget: COMPACT_BUDGET,
                })
                .await?
            {
                Reply::Compacted { next: Some(n) } => after = n,
                Reply::Compacted { next: None } => break,
                _ => return Err(Error::Internal("unexpected writer reply".into())),
            }
            // Let writers in between the steps.
            tokio::task::yield_now().await;
        }
        self.submit(Op::Checkpoint).await?;
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.revision.load(Ordering::SeqCst))
    }
}
