//! What upstream's NamespaceLifecycle admission reads from its informer: which
//! namespaces exist and which are terminating, kept in memory from a watch so that a
//! create does not read the store for its namespace. Anything the cache cannot answer
//! with "open" (not synced yet, unknown name, terminating) is looked up live, as
//! upstream falls back to a live lookup when its lister misses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::RwLock;
use serde_json::Value;
use store::{EventKind, KeyValue, Store};

/// Wait before watching again after the watch failed or ended.
const RETRY: Duration = Duration::from_millis(200);

#[derive(Default)]
pub(crate) struct NamespaceCache {
    state: RwLock<State>,
    started: std::sync::OnceLock<()>,
}

#[derive(Default)]
struct State {
    synced: bool,
    /// Namespace name → whether it is terminating.
    terminating: HashMap<String, bool>,
}

impl NamespaceCache {
    /// Whether `name` is known to exist and not to be terminating. `false` means "ask
    /// the store". Starts the watch of `prefix()` on first use (it needs a runtime).
    pub(crate) fn is_open(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        prefix: impl FnOnce() -> String,
        name: &str,
    ) -> bool {
        self.started.get_or_init(|| {
            tokio::spawn(self.clone().follow(store.clone(), prefix()));
        });
        let state = self.state.read();
        state.synced && state.terminating.get(name) == Some(&false)
    }

    /// Lists then watches the namespaces, again after each failure, until the cache
    /// is no longer referenced (checked between watches).
    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, prefix: String) {
        let weak = Arc::downgrade(&self);
        drop(self);
        loop {
            let Some(cache) = weak.upgrade() else { return };
            cache.sync(store.as_ref(), &prefix).await;
            cache.state.write().synced = false;
            drop(cache);
            tokio::time::sleep(RETRY).await;
        }
    }

    /// One list and the watch after it, until the watch fails or ends.
    async fn sync(&self, store: &dyn Store, prefix: &str) {
        let Ok(listed) = store.list(prefix, Default::default()).await else {
            return;
        };
        let Ok(mut events) = store.watch(prefix, listed.revision).await else {
            return;
        };
        {
            let mut state = self.state.write();
            state.terminating = listed.items.iter().filter_map(entry).collect();
            state.synced = true;
        }
        while let Some(Ok(event)) = events.next().await {
            let mut state = self.state.write();
            match event.kind {
                EventKind::Delete => {
                    if let Some((name, _)) = entry(&event.kv) {
                        state.terminating.remove(&name);
                    }
                }
                _ => {
                    if let Some((name, terminating)) = entry(&event.kv) {
                        state.terminating.insert(name, terminating);
                    }
                }
            }
        }
    }
}

/// A stored namespace's name and whether it is terminating.
fn entry(kv: &KeyValue) -> Option<(String, bool)> {
    let ns: Value = serde_json::from_slice(&kv.value).ok()?;
    let name = api::meta::name(&ns)?.to_string();
    Some((name, api::meta::deletion_timestamp(&ns).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const PREFIX: &str = "/registry/namespaces/";

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn ns(name: &str, terminating: bool) -> bytes::Bytes {
        let mut v = serde_json::json!({"metadata": {"name": name}});
        if terminating {
            v["metadata"]["deletionTimestamp"] = "2026-12-02T00:00:00Z".into();
        }
        serde_json::to_vec(&v).expect("json").into()
    }

    #[tokio::test]
    async fn follows_creation_termination_and_deletion() {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn Store> =
            Arc::new(store::sqlite::SqliteStore::open(dir.path().join("db")).expect("store"));
        store
            .create(&format!("{PREFIX}before"), ns("before", false))
            .await
            .expect("create");
        let cache = Arc::new(NamespaceCache::default());
        let open = |name: &str| cache.is_open(&store, || PREFIX.into(), name);
        until("a namespace listed at start is open", || open("before")).await;
        assert!(!open("later"), "unknown namespaces are asked of the store");

        let kv = store
            .create(&format!("{PREFIX}later"), ns("later", false))
            .await
            .expect("create");
        until("a new namespace is open", || open("later")).await;
        store
            .update(
                &format!("{PREFIX}later"),
                ns("later", true),
                kv.mod_revision,
            )
            .await
            .expect("update");
        until("a terminating namespace is not open", || !open("later")).await;
        store
            .delete(&format!("{PREFIX}before"), None)
            .await
            .expect("delete");
        until("a deleted namespace is not open", || !open("before")).await;
    }
}
