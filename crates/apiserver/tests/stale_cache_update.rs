//! Guaranteed updates start from the watch cache's copy and fall back to the store's
//! latest: a stale first guess never loses an update nor answers from stale state.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value, json};
use store::{KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream};

/// A store whose "cache" answers with whatever was stored when `freeze` was called.
struct StaleCache {
    inner: Arc<dyn Store>,
    frozen: Mutex<Option<KeyValue>>,
}

#[async_trait]
impl Store for StaleCache {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn get_cached(&self, key: &str) -> Result<Option<KeyValue>> {
        let frozen = self.frozen.lock().clone();
        match frozen {
            Some(kv) if kv.key == key => Ok(Some(kv)),
            _ => Ok(None),
        }
    }
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
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
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
}

#[tokio::test]
async fn stale_first_guesses_are_retried_from_the_latest() {
    let store = Arc::new(StaleCache {
        inner: testkit::memory_store::MemoryStore::new(),
        frozen: Mutex::new(None),
    });
    let state = apiserver::build(apiserver::Options {
        store: store.clone(),
        authenticator: Default::default(),
        server_address: "127.0.0.1:6443".into(),
        bookmark_interval: None,
        default_watch_timeout: Duration::from_secs(60),
        service_cidr: "10.43.0.0/16".parse().unwrap(),
        node_port_range: 30000..=32767,
        toleration_defaults: Default::default(),
        kubelet_client: None,
        service_account_tokens: None,
        authorization_modes: vec![apiserver::auth::AuthorizationMode::AlwaysAllow],
    });
    let reg = &state.registry;
    let info = reg.resources.get("", "v1", "configmaps").unwrap();
    let ctx = apiserver::registry::Context::system();
    let ns = json!({"metadata": {"name": "default"}});
    let ns_info = reg.resources.get("", "v1", "namespaces").unwrap();
    reg.create(&ns_info, None, ns, &ctx).await.unwrap();
    let cm = json!({"metadata": {"name": "c"}, "data": {"n": "0"}});
    reg.create(&info, Some("default"), cm, &ctx).await.unwrap();
    let key = info.key(Some("default"), "c");
    *store.frozen.lock() = store.inner.get(&key).await.unwrap();

    let set = |n: &'static str| {
        move |old: &Value| {
            let mut new = old.clone();
            new["data"]["n"] = json!(n);
            Ok(new)
        }
    };
    let mode = apiserver::registry::UpdateMode::Main;
    // Moves the store past the frozen copy.
    let first = reg
        .guaranteed_update(&info, Some("default"), "c", mode, &ctx, set("1"))
        .await
        .unwrap();
    assert_eq!(first["data"]["n"], "1");
    // From the stale copy this would be a change (0 -> 1), from the latest a no-op:
    // either way the answer is the latest state, not the stale one.
    let again = reg
        .guaranteed_update(&info, Some("default"), "c", mode, &ctx, set("1"))
        .await
        .unwrap();
    assert_eq!(
        again["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    // A change judged against the stale copy (0 -> 0, a no-op there) must still be
    // made against the latest (1 -> 0).
    let back = reg
        .guaranteed_update(&info, Some("default"), "c", mode, &ctx, set("0"))
        .await
        .unwrap();
    assert_eq!(back["data"]["n"], "0");
    let stored: Value =
        serde_json::from_slice(&store.inner.get(&key).await.unwrap().unwrap().value).unwrap();
    assert_eq!(stored["data"]["n"], "0", "the update reached the store");
    // An object the cache does not hold yet is found in the store.
    *store.frozen.lock() = None;
    reg.guaranteed_update(&info, Some("default"), "c", mode, &ctx, set("2"))
        .await
        .unwrap();
}
