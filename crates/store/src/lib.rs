//! Cluster state as kube-apiserver keeps it in etcd: an MVCC key-value store with one
//! global revision, compare-and-swap writes and watches that resume from a revision.
//!
//! Every backend implements [`Store`] and passes the same conformance suite
//! (`store::testing`). Keys follow the Kubernetes etcd layout
//! (`/registry/<resource>/<namespace>/<name>`); values are opaque bytes.

pub mod cache;
pub mod etcd;
mod live;
pub mod sqlite;
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A store revision. Revisions are global, start at 1 and grow by one per write.
pub type Revision = i64;

/// etcd's default request size limit; larger values are refused by every backend alike.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this key (unchanged by updates).
    pub create_revision: Revision,
    /// Revision of the write that produced this value. This is the object's resourceVersion.
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Create,
    Update,
    Delete,
}

/// One change, as delivered by [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// Create/Update: the new state. Delete: the last value the key had, with
    /// `mod_revision` set to the revision of the delete itself.
    pub kv: KeyValue,
    /// Update/Delete: the state just before this change. Create: `None`.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Options of [`Store::list`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// At most this many items; 0 means no limit.
    pub limit: usize,
    /// Resume a paged list after this key (exclusive).
    pub continue_after: Option<String>,
    /// Read the state as of this revision; 0 means the latest.
    pub revision: Revision,
}

#[derive(Clone, Debug, Default)]
pub struct ListResult {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the list reflects (the store's revision when read at the latest).
    pub revision: Revision,
    /// True when `limit` cut the list short.
    pub more: bool,
    /// How many items come after this page (0 when `more` is false).
    pub remaining: i64,
}

/// A stream of changes in revision order, without gaps. It ends with an `Err` when the
/// watch cannot go on (compaction, a watcher too slow to keep up, the backend lost).
///
/// Events are shared: every watcher of a change gets the same `Arc`, so delivering to
/// a thousand watchers copies no key or value.
pub type WatchStream = BoxStream<'static, Result<Arc<Event>>>;

/// One item of a [`Store::watch_progress`] stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    Event(Arc<Event>),
    /// Every event under the watched prefix up to this revision has been delivered,
    /// though none of them may have carried it (etcd's progress notification).
    Progress(Revision),
}

/// A [`WatchStream`] with progress reports in between the events.
pub type ProgressStream = BoxStream<'static, Result<WatchItem>>;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The key does not exist (or no longer exists).
    #[error("key {key} not found")]
    NotFound { key: String },
    /// `create` found the key already present.
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// A compare-and-swap saw another revision than the caller expected.
    #[error("conflict on key {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// The requested revision was compacted away; the API answers 410 Gone.
    #[error("required revision {requested} has been compacted (oldest available is {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision has not happened yet.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// The value is over [`MAX_VALUE_BYTES`].
    #[error("value of key {key} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    /// A watch was ended by the store, e.g. because the watcher fell too far behind.
    #[error("watch closed: {reason}")]
    WatchClosed { reason: String },
    /// The backend cannot serve requests now (etcd without quorum, connection lost).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A store file is damaged; start-up must fail rather than start empty.
    #[error("store file {} is corrupt: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The store's configuration cannot work (a bad endpoint URL, an unreadable or
    /// missing TLS file).
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("store error: {0}")]
    Internal(String),
}

/// The storage interface the API server relies on, with etcd v3's semantics.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`, if present.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// The value of `key` as a cache in front of the store last saw it, which may be
    /// behind the store: a first guess for compare-and-swap updates (which fail on a
    /// stale guess and then read [`Store::get`]), as upstream's GuaranteedUpdate starts
    /// from the watch cache's object. Backends without a cache read the latest.
    async fn get_cached(&self, key: &str) -> Result<Option<KeyValue>> {
        self.get(key).await
    }

    /// Keys starting with `prefix`, in key order, consistent at one revision.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] when it is present.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces `key` only if its current mod revision is `expected`
    /// ([`Error::Conflict`] otherwise, [`Error::NotFound`] if it is absent).
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key`, guarded by its mod revision when `expected` is given. Returns the
    /// deleted value with `mod_revision` set to the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every change under `prefix` after revision `after` (0: from now on), in order.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Like [`Store::watch`], and also reports progress, so a cache can tell it is
    /// current at a revision that none of its events carried. `None`: this backend
    /// cannot report progress.
    async fn watch_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<Option<ProgressStream>> {
        let _ = (prefix, after);
        Ok(None)
    }

    /// Forgets history older than `revision`; reads and watches before it then fail
    /// with [`Error::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The store's latest revision.
    async fn current_revision(&self) -> Result<Revision>;
}

/// Refuses values over etcd's limit, so every backend behaves alike.
pub fn check_value_size(key: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge {
            key: key.to_string(),
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}
