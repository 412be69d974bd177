//! The SQLite backend passes the conformance suite, survives reopening, and refuses
//! damaged files with an error naming them.

use std::sync::Arc;

use store::sqlite::SqliteStore;
use store::{Error, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
    store::testing::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_data_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let rev = {
        let s = SqliteStore::open(&path).unwrap();
        s.create("/registry/a", "1".into()).await.unwrap();
        s.create("/registry/b", "2".into())
            .await
            .unwrap()
            .mod_revision
    };
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), rev);
    assert_eq!(s.get("/registry/a").await.unwrap().unwrap().value, "1");
    let next = s.create("/registry/c", "3".into()).await.unwrap();
    assert_eq!(next.mod_revision, rev + 1);
}

#[test]
fn damaged_files_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not a sqlite database, it is just some bytes of text",
    )
    .unwrap();
    match SqliteStore::open(&path) {
        Err(Error::Corrupt { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a damaged file"),
    }
}
