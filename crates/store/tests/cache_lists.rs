//! Lists through the watch cache: at the latest revision they are served from memory
//! once the cache has caught up with the backend, and they go to the backend for an
//! exact revision, a prefix spanning several types, or a cache that cannot catch up.
//! The backend is SQLite behind a wrapper that counts its lists and can hide its
//! progress reports, claim a revision the cache will never see, or hold a type's lists.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use store::cache::{CacheConfig, WatchCache};
use store::sqlite::SqliteStore;
use store::{
    KeyValue, ListOptions, ListResult, ProgressStream, Result, Revision, Store, WatchStream,
};

struct Counting {
    inner: SqliteStore,
    lists: AtomicUsize,
    /// Whether `watch_progress` is offered.
    progress: AtomicBool,
    /// Added to the revision the backend reports.
    ahead: AtomicI64,
    /// Lists of prefixes starting with this wait until `release` is notified.
    held: parking_lot::Mutex<Option<String>>,
    release: tokio::sync::Notify,
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let held = self.held.lock().clone();
        if held.is_some_and(|h| prefix.starts_with(&h)) {
            self.release.notified().await;
        }
        self.inner.list(prefix, opts).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.inner.update(key, value, expected).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn watch_progress(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<Option<ProgressStream>> {
        if !self.progress.load(Ordering::SeqCst) {
            return Ok(None);
        }
        self.inner.watch_progress(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.current_revision().await? + self.ahead.load(Ordering::SeqCst))
    }
}

fn setup(dir: &tempfile::TempDir, progress: bool) -> (Arc<Counting>, WatchCache) {
    let backend = Arc::new(Counting {
        inner: SqliteStore::open(dir.path().join("state.db")).unwrap(),
        lists: AtomicUsize::new(0),
        progress: AtomicBool::new(progress),
        ahead: AtomicI64::new(0),
        held: parking_lot::Mutex::new(None),
        release: tokio::sync::Notify::new(),
    });
    let config = CacheConfig {
        catch_up: Duration::from_millis(300),
        ..Default::default()
    };
    (backend.clone(), WatchCache::new(backend, config))
}

fn keys(r: &ListResult) -> Vec<&str> {
    r.items.iter().map(|kv| kv.key.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_at_the_latest_revision_come_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, cache) = setup(&dir, true);
    for i in 0..5 {
        cache
            .create(&format!("/registry/cms/ns/c{i}"), "v".into())
            .await
            .unwrap();
    }
    // The first list starts the cache with one list of the whole type.
    let all = cache
        .list("/registry/cms/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5);
    assert_eq!(backend.lists.load(Ordering::SeqCst), 1);
    // Every write is seen by the next list, including writes to other types, which
    // move the revision without an event of this type.
    let mut last = 0;
    for i in 0..20 {
        let own = cache
            .create(&format!("/registry/cms/ns/d{i}"), "v".into())
            .await
            .unwrap();
        let other = cache
            .create(&format!("/registry/pods/ns/p{i}"), "v".into())
            .await
            .unwrap();
        let listed = cache
            .list("/registry/cms/ns/", ListOptions::default())
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 6 + i);
        assert!(listed.items.contains(&own));
        assert!(listed.revision >= other.mod_revision);
        last = listed.revision;
    }
    let deleted = cache.delete("/registry/cms/ns/c0", None).await.unwrap();
    let page = cache
        .list(
            "/registry/cms/ns/",
            ListOptions {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.revision >= deleted.mod_revision && page.revision > last);
    assert_eq!(page.items[0].key, "/registry/cms/ns/c1");
    assert!(page.more);
    assert_eq!(page.remaining, 14);
    assert_eq!(
        backend.lists.load(Ordering::SeqCst),
        1,
        "only the cache's first list reached the backend"
    );
    // The next page reads at the first page's revision: the backend serves it and
    // agrees with memory.
    let next = cache
        .list(
            "/registry/cms/ns/",
            ListOptions {
                limit: 10,
                continue_after: Some(page.items[9].key.clone()),
                revision: page.revision,
            },
        )
        .await
        .unwrap();
    assert_eq!(backend.lists.load(Ordering::SeqCst), 2);
    assert_eq!(next.revision, page.revision);
    assert_eq!(next.items.len(), 10);
    assert_eq!(next.remaining, 4);
    let direct = backend
        .inner
        .list("/registry/cms/ns/", ListOptions::default())
        .await
        .unwrap();
    let memory = cache
        .list("/registry/cms/ns/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(
        memory.items, direct.items,
        "memory holds what the backend holds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_cache_cannot_serve_go_to_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, cache) = setup(&dir, true);
    cache
        .create("/registry/cms/ns/a", "1".into())
        .await
        .unwrap();
    cache
        .create("/registry/pods/ns/p", "1".into())
        .await
        .unwrap();
    cache
        .list("/registry/cms/", ListOptions::default())
        .await
        .unwrap();
    let count = || backend.lists.load(Ordering::SeqCst);
    let started = count();
    // Spanning several types: no cache holds that.
    let everything = cache
        .list("/registry/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(
        keys(&everything),
        ["/registry/cms/ns/a", "/registry/pods/ns/p"]
    );
    assert_eq!(count(), started + 1);
    // A backend revision the cache never reaches: served by the backend after the wait.
    backend.ahead.store(1000, Ordering::SeqCst);
    let waited = std::time::Instant::now();
    let behind = cache
        .list("/registry/cms/", ListOptions::default())
        .await
        .unwrap();
    assert!(waited.elapsed() >= Duration::from_millis(300));
    assert_eq!(keys(&behind), ["/registry/cms/ns/a"]);
    assert_eq!(count(), started + 2);
    backend.ahead.store(0, Ordering::SeqCst);
    cache
        .list("/registry/cms/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(count(), started + 2, "caught up again: memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_progress_reports_only_the_types_own_events_make_it_current() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, cache) = setup(&dir, false);
    cache
        .create("/registry/cms/ns/a", "1".into())
        .await
        .unwrap();
    cache
        .list("/registry/cms/", ListOptions::default())
        .await
        .unwrap();
    let count = || backend.lists.load(Ordering::SeqCst);
    assert_eq!(count(), 1);
    // The last write was this type's, so the cache knows it is current once its event
    // is in (until then the backend answers: nothing says the event is coming).
    let b = cache
        .create("/registry/cms/ns/b", "2".into())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let before = count();
        let listed = cache
            .list("/registry/cms/", ListOptions::default())
            .await
            .unwrap();
        assert!(listed.items.contains(&b));
        if count() == before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never served from memory"
        );
        tokio::task::yield_now().await;
    }
    let served = count();
    // Another type's write moves the revision past anything the cache can confirm: the
    // backend answers at once rather than after the catch-up wait.
    cache
        .create("/registry/pods/ns/p", "1".into())
        .await
        .unwrap();
    let waited = std::time::Instant::now();
    let listed = cache
        .list("/registry/cms/", ListOptions::default())
        .await
        .unwrap();
    assert!(waited.elapsed() < Duration::from_millis(300));
    assert_eq!(listed.items.len(), 2);
    assert_eq!(count(), served + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_starting_slowly_does_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, cache) = setup(&dir, true);
    let cache = Arc::new(cache);
    backend
        .create("/registry/configmaps/ns/a", Bytes::from_static(b"a"))
        .await
        .unwrap();
    *backend.held.lock() = Some("/registry/pods/".into());
    let before = backend.lists.load(Ordering::SeqCst);
    let pods = tokio::spawn({
        let cache = cache.clone();
        async move { cache.list("/registry/pods/", ListOptions::default()).await }
    });
    // The pods cache's start is stuck in its first list; configmaps start and answer.
    let wait = Duration::from_secs(5);
    tokio::time::timeout(wait, async {
        while backend.lists.load(Ordering::SeqCst) == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the pods cache lists its type");
    let other = tokio::time::timeout(
        wait,
        cache.list("/registry/configmaps/", ListOptions::default()),
    )
    .await
    .expect("configmaps listed while pods start")
    .unwrap();
    assert_eq!(keys(&other), ["/registry/configmaps/ns/a"]);
    assert!(!pods.is_finished());
    *backend.held.lock() = None;
    // A permit, in case the held list has not reached its wait yet.
    backend.release.notify_one();
    let pods = tokio::time::timeout(wait, pods)
        .await
        .expect("pods listed")
        .unwrap()
        .unwrap();
    assert!(pods.items.is_empty());
}
