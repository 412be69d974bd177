//! The conformance suite every backend must pass (upstream's storage/testing
//! store_tests.go in spirit): call [`run_all`] with a fresh store. Each check uses its
//! own key prefix, so they can share one store.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Error, EventKind, ListOptions, MAX_VALUE_BYTES, Revision, Store};

fn v(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn Store>) {
    crud(store.as_ref(), "/registry/t-crud/").await;
    conflicts(store.as_ref(), "/registry/t-conflicts/").await;
    list_paging_at_revision(store.as_ref(), "/registry/t-paging/").await;
    watch_from_every_revision(store.as_ref(), "/registry/t-watch/").await;
    watch_prefix_isolation(store.as_ref(), "/registry/t-iso/").await;
    too_large(store.as_ref(), "/registry/t-large/").await;
    racing_writers(store.clone(), "/registry/t-race/", 8, 25).await;
    many_watchers(store.clone(), "/registry/t-many/", 1000, 20).await;
    // Compaction last: it forgets the history the others used.
    compaction(store.as_ref(), "/registry/t-compact/").await;
}

pub async fn crud(s: &dyn Store, p: &str) {
    let k = format!("{p}a");
    assert_eq!(s.get(&k).await.unwrap(), None);
    let c = s.create(&k, v("1")).await.unwrap();
    assert_eq!(c.create_revision, c.mod_revision);
    assert_eq!(s.current_revision().await.unwrap(), c.mod_revision);
    let got = s.get(&k).await.unwrap().unwrap();
    assert_eq!((got.value, got.mod_revision), (v("1"), c.mod_revision));
    let u = s.update(&k, v("2"), c.mod_revision).await.unwrap();
    assert!(u.mod_revision > c.mod_revision);
    assert_eq!(u.create_revision, c.create_revision);
    let d = s.delete(&k, Some(u.mod_revision)).await.unwrap();
    assert_eq!(d.value, v("2"), "delete returns the last value");
    assert!(
        d.mod_revision > u.mod_revision,
        "delete has its own revision"
    );
    assert_eq!(s.get(&k).await.unwrap(), None);
    let again = s.create(&k, v("3")).await.unwrap();
    assert_eq!(
        again.create_revision, again.mod_revision,
        "a recreated key starts over"
    );
}

pub async fn conflicts(s: &dyn Store, p: &str) {
    let k = format!("{p}a");
    let c = s.create(&k, v("1")).await.unwrap();
    assert!(matches!(
        s.create(&k, v("x")).await,
        Err(Error::AlreadyExists { .. })
    ));
    let stale = c.mod_revision;
    let u = s.update(&k, v("2"), stale).await.unwrap();
    assert!(matches!(
        s.update(&k, v("3"), stale).await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        s.delete(&k, Some(stale)).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        s.get(&k).await.unwrap().unwrap().value,
        v("2"),
        "no lost update"
    );
    s.delete(&k, Some(u.mod_revision)).await.unwrap();
    assert!(matches!(
        s.update(&k, v("4"), u.mod_revision).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.delete(&k, None).await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn list_paging_at_revision(s: &dyn Store, p: &str) {
    for i in 0..5 {
        s.create(&format!("{p}k{i}"), v(&i.to_string()))
            .await
            .unwrap();
    }
    s.create(&format!("{p}z/other"), v("x")).await.unwrap();
    let first = s
        .list(
            &format!("{p}k"),
            ListOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.more);
    assert_eq!(first.remaining, 3);
    let at = first.revision;
    // Changes after the first page do not show in later pages read at its revision.
    let k3 = s.get(&format!("{p}k3")).await.unwrap().unwrap();
    s.update(&format!("{p}k3"), v("changed"), k3.mod_revision)
        .await
        .unwrap();
    s.delete(&format!("{p}k4"), None).await.unwrap();
    s.create(&format!("{p}k5"), v("new")).await.unwrap();
    let rest = s
        .list(
            &format!("{p}k"),
            ListOptions {
                continue_after: Some(first.items[1].key.clone()),
                revision: at,
                limit: 0,
            },
        )
        .await
        .unwrap();
    let keys: Vec<&str> = rest.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, [format!("{p}k2"), format!("{p}k3"), format!("{p}k4")]);
    assert_eq!(
        rest.items[1].value,
        v("3"),
        "read at the first page's revision"
    );
    assert_eq!(rest.revision, at);
    let now = s
        .list(&format!("{p}k"), ListOptions::default())
        .await
        .unwrap();
    assert_eq!(now.items.len(), 5);
    assert!(now.revision > at);
    let future = s
        .list(
            p,
            ListOptions {
                revision: now.revision + 1000,
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(future, Err(Error::FutureRevision { .. })),
        "{future:?}"
    );
}

pub async fn watch_from_every_revision(s: &dyn Store, p: &str) {
    let k = format!("{p}a");
    let start = s.current_revision().await.unwrap();
    let c = s.create(&k, v("1")).await.unwrap();
    let u = s.update(&k, v("2"), c.mod_revision).await.unwrap();
    let d = s.delete(&k, None).await.unwrap();
    let expected = [
        (EventKind::Create, c.mod_revision),
        (EventKind::Update, u.mod_revision),
        (EventKind::Delete, d.mod_revision),
    ];
    // Unrelated writes interleave with ours in the global revision sequence.
    let mut from: Vec<Revision> = vec![start, c.mod_revision, u.mod_revision];
    from.dedup();
    for after in from {
        let mut w = s.watch(p, after).await.unwrap();
        for (kind, rev) in expected.iter().filter(|(_, r)| *r > after) {
            let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
                .await
                .expect("event in time")
                .unwrap()
                .unwrap();
            assert_eq!(
                (ev.kind, ev.revision()),
                (*kind, *rev),
                "watch after {after}"
            );
            if ev.kind == EventKind::Update {
                assert_eq!(ev.prev.as_ref().unwrap().value, v("1"));
            }
            if ev.kind == EventKind::Delete {
                assert_eq!(ev.kv.value, v("2"));
            }
        }
    }
    // A watch from now sees only what comes next.
    let mut w = s.watch(p, 0).await.unwrap();
    let again = s.create(&k, v("3")).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.revision(), again.mod_revision);
}

pub async fn watch_prefix_isolation(s: &dyn Store, p: &str) {
    let mut w = s.watch(&format!("{p}pods/"), 0).await.unwrap();
    s.create(&format!("{p}podsecurity/x"), v("no"))
        .await
        .unwrap();
    let mine = s.create(&format!("{p}pods/x"), v("yes")).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.revision(), mine.mod_revision);
}

pub async fn too_large(s: &dyn Store, p: &str) {
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let r = s.create(&format!("{p}big"), big).await;
    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
    assert_eq!(s.get(&format!("{p}big")).await.unwrap(), None);
}

/// Writers race read-modify-write on one key; each round exactly one wins.
pub async fn racing_writers(s: Arc<dyn Store>, p: &str, writers: usize, rounds: usize) {
    let k = format!("{p}counter");
    s.create(&k, v("0")).await.unwrap();
    for round in 0..rounds {
        let base = s.get(&k).await.unwrap().unwrap();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (s, k) = (s.clone(), k.clone());
            let rev = base.mod_revision;
            tasks.push(tokio::spawn(async move {
                s.update(&k, v(&format!("{round}-{w}")), rev).await
            }));
        }
        let mut wins = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => wins += 1,
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

/// Many watchers each see every event, in order.
pub async fn many_watchers(s: Arc<dyn Store>, p: &str, watchers: usize, events: usize) {
    let start = s.current_revision().await.unwrap();
    let mut streams = Vec::new();
    for _ in 0..watchers {
        streams.push(s.watch(p, start).await.unwrap());
    }
    let mut revs = Vec::new();
    for i in 0..events {
        revs.push(
            s.create(&format!("{p}k{i}"), v("x"))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let revs = Arc::new(revs);
    let mut tasks = Vec::new();
    for mut w in streams {
        let revs = revs.clone();
        tasks.push(tokio::spawn(async move {
            for want in revs.iter() {
                let ev = tokio::time::timeout(Duration::from_secs(30), w.next())
                    .await
                    .expect("event")
                    .unwrap()
                    .unwrap();
                assert_eq!(ev.revision(), *want);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

pub async fn compaction(s: &dyn Store, p: &str) {
    let k = format!("{p}a");
    let c = s.create(&k, v("1")).await.unwrap();
    let u = s.update(&k, v("2"), c.mod_revision).await.unwrap();
    s.create(&format!("{p}b"), v("b")).await.unwrap();
    let d = s.delete(&format!("{p}b"), None).await.unwrap();
    s.compact(u.mod_revision).await.unwrap();
    let w = s.watch(p, c.mod_revision).await;
    assert!(
        matches!(w, Err(Error::Compacted { .. })),
        "watch before compaction"
    );
    let l = s
        .list(
            p,
            ListOptions {
                revision: c.mod_revision,
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(l, Err(Error::Compacted { .. })),
        "list before compaction"
    );
    // At and after the compaction revision, everything is still there.
    let at = s
        .list(
            p,
            ListOptions {
                revision: u.mod_revision,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(at.items.len(), 1);
    assert_eq!(at.items[0].value, v("2"));
    let mut w = s.watch(p, u.mod_revision).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.kind, EventKind::Create);
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.revision(), d.mod_revision);
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, v("2"));
}
