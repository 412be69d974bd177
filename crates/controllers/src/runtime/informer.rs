//! Shared informers, as client-go's SharedInformer: one list+watch per resource type
//! keeps a cache indexed by namespace and tells every subscribed controller what
//! changed, with the object before and after. Controllers read the cache instead of
//! listing from the API server on every sync.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};

/// One change seen by an informer.
#[derive(Debug)]
pub enum Change<K> {
    /// Created (`old` is `None`) or updated.
    Applied { old: Option<Arc<K>>, new: Arc<K> },
    /// Deleted; the object as last seen.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Applied { old, new } => Self::Applied {
                old: old.clone(),
                new: new.clone(),
            },
            Self::Deleted(o) => Self::Deleted(o.clone()),
        }
    }
}

type Cache<K> = HashMap<String, HashMap<String, Arc<K>>>;

struct Inner<K> {
    cache: RwLock<Cache<K>>,
    /// Held while a change is applied and sent, so a new subscriber's replay of the
    /// cache and the live changes after it never overlap or miss one.
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Change<K>>>>,
    synced: watch::Sender<bool>,
}

/// A cache of one resource type with change notifications. Cheap to clone.
pub struct Informer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K> Default for Informer<K> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                cache: RwLock::new(HashMap::new()),
                subscribers: Mutex::new(Vec::new()),
                synced: watch::channel(false).0,
            }),
        }
    }
}

fn key_of<K: Resource>(obj: &K) -> (String, String) {
    let m = obj.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

impl<K: Resource + Send + Sync + 'static> Informer<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the cache from a watcher stream until the stream ends (it does not,
    /// with a backoff); run it as a task.
    pub async fn run<S>(self, stream: S)
    where
        S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut relist: Option<Cache<K>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(obj)) => {
                    let (ns, name) = key_of(&obj);
                    relist
                        .get_or_insert_with(HashMap::new)
                        .entry(ns)
                        .or_default()
                        .insert(name, Arc::new(obj));
                }
                Ok(watcher::Event::InitDone) => {
                    self.replace(relist.take().unwrap_or_default());
                    self.inner.synced.send_replace(true);
                }
                Ok(watcher::Event::Apply(obj)) => self.apply(Arc::new(obj)),
                Ok(watcher::Event::Delete(obj)) => self.delete(Arc::new(obj)),
                Err(e) => {
                    tracing::debug!(error = %e, kind = std::any::type_name::<K>(), "watch failed; retrying")
                }
            }
        }
    }

    fn apply(&self, new: Arc<K>) {
        let mut subs = self.inner.subscribers.lock();
        let (ns, name) = key_of(&*new);
        let old = self
            .inner
            .cache
            .write()
            .entry(ns)
            .or_default()
            .insert(name, new.clone());
        broadcast(&mut subs, Change::Applied { old, new });
    }

    fn delete(&self, obj: Arc<K>) {
        let mut subs = self.inner.subscribers.lock();
        let (ns, name) = key_of(&*obj);
        {
            let mut cache = self.inner.cache.write();
            if let Some(names) = cache.get_mut(&ns) {
                names.remove(&name);
                if names.is_empty() {
                    cache.remove(&ns);
                }
            }
        }
        broadcast(&mut subs, Change::Deleted(obj));
    }

    /// A full relist: everything new or changed is applied, everything gone deleted.
    fn replace(&self, fresh: Cache<K>) {
        let mut subs = self.inner.subscribers.lock();
        let old = std::mem::replace(&mut *self.inner.cache.write(), fresh.clone());
        for (ns, names) in &fresh {
            for (name, new) in names {
                let before = old.get(ns).and_then(|n| n.get(name)).cloned();
                let same = before.as_ref().is_some_and(|b| {
                    b.meta().resource_version.is_some()
                        && b.meta().resource_version == new.meta().resource_version
                });
                if !same {
                    broadcast(
                        &mut subs,
                        Change::Applied {
                            old: before,
                            new: new.clone(),
                        },
                    );
                }
            }
        }
        for (ns, names) in old {
            for (name, gone) in names {
                if !fresh.get(&ns).is_some_and(|n| n.contains_key(&name)) {
                    broadcast(&mut subs, Change::Deleted(gone));
                }
            }
        }
    }

    /// Every change from now on, starting with the cache's current contents as creations.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Change<K>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut subs = self.inner.subscribers.lock();
        for names in self.inner.cache.read().values() {
            for obj in names.values() {
                let _ = tx.send(Change::Applied {
                    old: None,
                    new: obj.clone(),
                });
            }
        }
        subs.push(tx);
        rx
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.inner.cache.read().get(namespace)?.get(name).cloned()
    }

    /// The objects of one namespace (`""` for cluster-scoped objects).
    pub fn list(&self, namespace: &str) -> Vec<Arc<K>> {
        self.inner
            .cache
            .read()
            .get(namespace)
            .map(|n| n.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn list_all(&self) -> Vec<Arc<K>> {
        self.inner
            .cache
            .read()
            .values()
            .flat_map(|n| n.values().cloned())
            .collect()
    }

    pub fn is_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Waits until the first list has been loaded.
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

fn broadcast<K>(subs: &mut Vec<mpsc::UnboundedSender<Change<K>>>, change: Change<K>) {
    subs.retain(|tx| tx.send(change.clone()).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(ns: &str, name: &str, rv: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn relist_reports_changes_and_deletions() {
        let inf = Informer::<ConfigMap>::new();
        let events = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(cm("a", "x", "1"))),
            Ok(watcher::Event::InitApply(cm("a", "y", "1"))),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(cm("a", "x", "2"))),
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(cm("a", "x", "2"))),
            Ok(watcher::Event::InitApply(cm("b", "z", "3"))),
            Ok(watcher::Event::InitDone),
        ];
        let mut rx = inf.subscribe();
        inf.clone().run(futures::stream::iter(events)).await;
        let mut seen = Vec::new();
        while let Ok(c) = rx.try_recv() {
            seen.push(match c {
                Change::Applied { old, new } => format!(
                    "apply {} {}",
                    new.metadata.name.clone().unwrap(),
                    old.is_some()
                ),
                Change::Deleted(o) => format!("delete {}", o.metadata.name.clone().unwrap()),
            });
        }
        seen[..2].sort();
        assert_eq!(
            seen,
            [
                "apply x false",
                "apply y false",
                "apply x true",
                "apply z false",
                "delete y"
            ]
        );
        assert!(inf.is_synced());
        assert_eq!(inf.list("a").len(), 1);
        assert!(inf.get("b", "z").is_some());
        // A late subscriber gets the cache replayed.
        let mut late = inf.subscribe();
        let mut n = 0;
        while late.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 2);
    }
}
