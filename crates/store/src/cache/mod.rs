//! A watch cache in front of any backend, like kube-apiserver's cacher: one upstream
//! watch per resource type, fanned out to every watcher of that type, with a bounded
//! window of recent events so watchers resuming from a recent revision are served
//! from memory. A watcher that cannot keep up is closed with a clear reason instead of
//! slowing the others or growing memory.
//!
//! It also keeps each resource type's objects as of its latest event, so lists at the
//! latest revision are served from memory, as upstream's consistent lists from cache
//! are: the list takes the backend's current revision (cheap), waits until the cache
//! has caught up with it, and pages through memory. Lists at an explicit revision,
//! outside the etcd layout, or that the cache cannot serve in time go to the backend.
//! Gets and writes pass through.

mod list;
mod resource;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream};
use resource::ResourceCache;

/// Sizes of the cache.
#[derive(Clone, Copy, Debug)]
pub struct CacheConfig {
    /// Recent events kept per resource type for watchers resuming from the past.
    pub history: usize,
    /// How far (in events of its resource type) a watcher may fall behind the newest
    /// before it counts as too slow and is closed; the watchers of a type share one
    /// log of this size.
    pub watcher_buffer: usize,
    /// How long a list at the latest revision waits for the cache to catch up before
    /// the backend serves it.
    pub catch_up: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        // Upstream sizes its window by time (75 s); a fixed count bounds memory.
        Self {
            history: 10_000,
            watcher_buffer: 10_000,
            // Upstream's cacher waits as long for freshness.
            catch_up: Duration::from_secs(3),
        }
    }
}

pub struct WatchCache {
    inner: Arc<dyn Store>,
    config: CacheConfig,
    resources: parking_lot::Mutex<HashMap<String, Arc<Slot>>>,
}

/// One resource type's cache, locked across its start so concurrent first watchers
/// share one upstream watch, while other types start and serve meanwhile.
type Slot = tokio::sync::Mutex<Option<Arc<ResourceCache>>>;

impl WatchCache {
    pub fn new(inner: Arc<dyn Store>, config: CacheConfig) -> Self {
        Self {
            inner,
            config,
            resources: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The cache serving `root`, started on first use and restarted after it failed.
    async fn resource(&self, root: &str) -> Result<Arc<ResourceCache>> {
        let slot = self
            .resources
            .lock()
            .entry(root.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.is_live()) {
            return Ok(c.clone());
        }
        let started = ResourceCache::start(self.inner.clone(), root, self.config).await?;
        *slot = Some(started.clone());
        Ok(started)
    }
}

/// The resource type a watch prefix belongs to, in the etcd layout:
/// `/registry/<resource>/` for built-ins, `/registry/<group>/<resource>/` where the
/// first segment is a group (it has a dot). Other prefixes are their own root.
pub fn resource_root(prefix: &str) -> String {
    layout_root(prefix).unwrap_or_else(|| prefix.to_string())
}

/// The resource type of `prefix` when it lies within one in the etcd layout.
fn layout_root(prefix: &str) -> Option<String> {
    let rest = prefix.strip_prefix("/registry/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let depth = if segments[0].contains('.') { 2 } else { 1 };
    // A prefix that stops inside the resource segment(s) spans no single type.
    if segments.len() <= depth || segments[..depth].iter().any(|s| s.is_empty()) {
        return None;
    }
    Some(format!("/registry/{}/", segments[..depth].join("/")))
}

#[async_trait]
impl Store for WatchCache {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.inner.get(key).await
    }

    async fn get_cached(&self, key: &str) -> Result<Option<KeyValue>> {
        if let Some(root) = layout_root(key)
            && let Ok(cache) = self.resource(&root).await
            && let Some(kv) = cache.get(key)
        {
            return Ok(Some(kv));
        }
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        // Exact-revision lists (continued pages among them) read the backend, as
        // upstream's do; so do prefixes spanning several types, which no cache holds.
        if opts.revision == 0
            && let Some(root) = layout_root(prefix)
        {
            let current = self.inner.current_revision().await?;
            match self.resource(&root).await {
                Ok(cache) => {
                    let served = cache
                        .list(prefix, &opts, current, self.config.catch_up)
                        .await;
                    if let Some(result) = served {
                        return Ok(result);
                    }
                }
                Err(e) => tracing::debug!(error = %e, root, "list bypasses the watch cache"),
            }
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
        let cache = self.resource(&resource_root(prefix)).await?;
        match cache.watch(prefix, after).await? {
            Some(stream) => Ok(stream),
            // Older than the window: the backend still has it, or says it is compacted.
            None => self.inner.watch(prefix, after).await,
        }
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.inner.compact(revision).await?;
        let slots: Vec<Arc<Slot>> = self.resources.lock().values().cloned().collect();
        for slot in slots {
            if let Some(cache) = slot.lock().await.as_ref() {
                cache.compacted(revision);
            }
        }
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::resource_root;

    #[test]
    fn roots_follow_the_etcd_layout() {
        assert_eq!(resource_root("/registry/pods/"), "/registry/pods/");
        assert_eq!(resource_root("/registry/pods/default/"), "/registry/pods/");
        assert_eq!(
            resource_root("/registry/pods/default/web"),
            "/registry/pods/"
        );
        assert_eq!(
            resource_root("/registry/example.com/widgets/ns/"),
            "/registry/example.com/widgets/"
        );
        assert_eq!(resource_root("/registry/"), "/registry/");
        assert_eq!(resource_root("/registry/po"), "/registry/po");
        assert_eq!(resource_root("/other/x/"), "/other/x/");
    }
}
