//! The watch cache in front of SQLite passes the same conformance suite, shares one
//! upstream watch among its watchers, and closes a watcher that stops reading without
//! holding the others back.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use store::cache::{CacheConfig, WatchCache};
use store::sqlite::SqliteStore;
use store::{Error, Store};

fn cached(dir: &tempfile::TempDir, config: CacheConfig) -> Arc<WatchCache> {
    let backend = Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
    Arc::new(WatchCache::new(backend, config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    store::testing::run_all(cached(&dir, CacheConfig::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_closed_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = cached(
        &dir,
        CacheConfig {
            history: 100,
            watcher_buffer: 5,
            ..Default::default()
        },
    );
    let mut slow = s.watch("/registry/pods/", 0).await.unwrap();
    let mut fast = s.watch("/registry/pods/", 0).await.unwrap();
    // The fast watcher acknowledges each event, so it never lags behind.
    let (ack_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(_)) = fast.next().await {
            if ack_tx.send(()).is_err() {
                break;
            }
        }
    });
    for i in 0..20 {
        s.create(&format!("/registry/pods/ns/p{i}"), "x".into())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("the fast watcher is not held back")
            .unwrap();
    }
    // The slow one gets at most what the ring still held when it read, then the
    // reason it was closed (never a gap: the ring had moved past its next event).
    let mut delivered = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.next())
            .await
            .unwrap()
        {
            Some(Ok(_)) => delivered += 1,
            Some(Err(e)) => break e,
            None => panic!("closed without a reason"),
        }
    };
    assert!(
        delivered < 20,
        "the slow watcher got all {delivered} events"
    );
    assert!(
        matches!(&end, Error::WatchClosed { reason } if reason.contains("too slow")),
        "{end}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_resume_from_the_window_and_fall_back_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = cached(
        &dir,
        CacheConfig {
            history: 3,
            watcher_buffer: 100,
            ..Default::default()
        },
    );
    // Revision 0 means "from now on"; start the history past it.
    s.create("/registry/other/x", "0".into()).await.unwrap();
    let first = s.create("/registry/cms/ns/a", "1".into()).await.unwrap();
    // Starts the cache of `cms` after `first`.
    let _w = s.watch("/registry/cms/", 0).await.unwrap();
    let mut revs = vec![];
    for i in 0..5 {
        let kv = s
            .create(&format!("/registry/cms/ns/b{i}"), "x".into())
            .await
            .unwrap();
        revs.push(kv.mod_revision);
    }
    // Within the window (the last 3 events): served from memory, in order.
    let mut w = s.watch("/registry/cms/ns/", revs[1]).await.unwrap();
    for want in &revs[2..] {
        let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.revision(), *want);
    }
    // Before the window: the backend serves it, from the very first write.
    let mut w = s
        .watch("/registry/cms/", first.mod_revision - 1)
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.revision(), first.mod_revision);
}
