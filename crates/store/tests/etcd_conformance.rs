//! The etcd backend against real etcd processes: the conformance suite on one member,
//! directly and through the watch cache, and a three-member cluster losing and regaining quorum. Needs `etcd` on PATH (the
//! tests fail, not skip, without it).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use store::cache::{CacheConfig, WatchCache};
use store::etcd::{EtcdConfig, EtcdStore};
use store::{Error, Store};
use support::etcd::EtcdCluster;

/// Longest a write may take to fail once quorum is gone: etcd refuses at once without a
/// leader, or gives up after its ~7s proposal timeout; the client's own timeout is 10s.
const FAIL_WITHIN: Duration = Duration::from_secs(20);

fn config(endpoints: Vec<String>) -> EtcdConfig {
    EtcdConfig {
        endpoints,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let etcd = EtcdCluster::start(1);
    let store = EtcdStore::connect(config(etcd.endpoints())).await.unwrap();
    store::testing::run_all(Arc::new(store)).await;
}

/// etcd reports no watch progress to the cache, so its lists take the other path:
/// from memory only when the type's own last event is etcd's revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_the_watch_cache() {
    let etcd = EtcdCluster::start(1);
    let store = EtcdStore::connect(config(etcd.endpoints())).await.unwrap();
    let cache = WatchCache::new(Arc::new(store), CacheConfig::default());
    store::testing::run_all(Arc::new(cache)).await;
}

/// Retries `f` until it succeeds or `within` passes; returns the last error otherwise.
async fn eventually<T, F, Fut>(within: Duration, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_lose_and_regain_quorum() {
    let mut etcd = EtcdCluster::start(3);
    let store = EtcdStore::connect(config(etcd.endpoints())).await.unwrap();
    store.create("/registry/q/a", "1".into()).await.unwrap();

    // One of three down: the other two still form a quorum, so writes go on. A
    // request on the dead member's connection may fail once while it is noticed.
    etcd.stop(0);
    let written = eventually(Duration::from_secs(15), || {
        store.create("/registry/q/one-down", "2".into())
    })
    .await;
    assert!(
        written.is_ok(),
        "a write with two of three members up: {written:?}"
    );
    for i in 0..5 {
        store
            .create(&format!("/registry/q/steady-{i}"), "x".into())
            .await
            .expect("writes keep working with one member down");
    }
    assert_eq!(
        store.get("/registry/q/a").await.unwrap().unwrap().value,
        "1"
    );

    // Two of three down: no quorum. The write must fail, in bounded time, with the
    // typed "unavailable" error rather than hang or panic.
    etcd.stop(1);
    let started = Instant::now();
    let failed = tokio::time::timeout(
        FAIL_WITHIN,
        store.create("/registry/q/two-down", "3".into()),
    )
    .await
    .expect("the write returned within the bound");
    match &failed {
        Err(Error::Unavailable(msg)) => {
            assert!(msg.contains("etcd"), "the error names the datastore: {msg}")
        }
        other => panic!("expected Error::Unavailable, got {other:?}"),
    }
    eprintln!(
        "write without quorum failed after {:?}: {}",
        started.elapsed(),
        failed.unwrap_err()
    );

    // A member back: quorum again, writes succeed again.
    etcd.restart(1);
    let back = eventually(Duration::from_secs(20), || {
        store.create("/registry/q/back", "4".into())
    })
    .await;
    assert!(back.is_ok(), "a write after quorum returned: {back:?}");
    store
        .create("/registry/q/back-2", "5".into())
        .await
        .expect("writes keep working once quorum is back");
    // Whether the write without quorum happened is deliberately not checked: etcd's
    // "request timed out" means the outcome is unknown (the proposal may sit in the
    // surviving member's log and commit once quorum returns), as etcd documents.
    let listed = store
        .list("/registry/q/", Default::default())
        .await
        .unwrap();
    assert!(
        listed.items.iter().any(|kv| kv.key == "/registry/q/back-2"),
        "reads see the writes made after quorum returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_a_clear_error() {
    // A port nothing listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let r = tokio::time::timeout(
        FAIL_WITHIN,
        EtcdStore::connect(config(vec![format!("http://127.0.0.1:{port}")])),
    )
    .await
    .expect("connect gave up within the bound");
    match r {
        Err(Error::Unavailable(msg)) => assert!(msg.contains("cannot"), "{msg}"),
        Err(e) => panic!("expected Error::Unavailable, got {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
    assert!(started.elapsed() < FAIL_WITHIN);
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    for endpoints in [vec![], vec!["127.0.0.1:2379".to_string()]] {
        let r = EtcdStore::connect(config(endpoints.clone())).await;
        assert!(matches!(r, Err(Error::Config(_))), "{endpoints:?}");
    }
    let r = EtcdStore::connect(EtcdConfig {
        endpoints: vec!["https://127.0.0.1:2379".into()],
        ca_file: Some("/nonexistent/ca.crt".into()),
        ..Default::default()
    })
    .await;
    assert!(matches!(r, Err(Error::Config(_))));
}
