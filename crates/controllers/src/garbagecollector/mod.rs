//! The garbage collector (upstream's pkg/controller/garbagecollector): deletes objects
//! whose owners are gone, carries out foreground deletion (dependents first, then the
//! owner's `foregroundDeletion` finalizer) and orphaning (references removed, then the
//! `orphan` finalizer), over an ownership graph built from watches of every
//! deletable resource type.

pub mod attempt;
pub mod graph;
pub mod monitors;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use graph::{Graph, Identity, Work};
use monitors::{Event, Monitor, Resources};

use crate::runtime::{Change, Queue, run_workers};

pub const COMPONENT: &str = "garbage-collector-controller";

pub struct GarbageCollector {
    pub(crate) client: kube::Client,
    pub(crate) graph: Mutex<Graph>,
    pub(crate) resources: RwLock<Arc<Resources>>,
    pub(crate) delete_queue: Queue<String>,
    pub(crate) orphan_queue: Queue<String>,
}

impl GarbageCollector {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            graph: Mutex::new(Graph::default()),
            resources: RwLock::new(Arc::new(Resources::default())),
            delete_queue: Queue::new(),
            orphan_queue: Queue::new(),
        })
    }

    /// Runs forever: discovery every `resync`, the graph, and `workers` workers per
    /// queue once the first monitors have synced.
    pub async fn run(self: Arc<Self>, workers: usize, resync: Duration) {
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Event>();
        let (synced_tx, mut synced_rx) = watch::channel(false);

        let this = self.clone();
        let graph = async move {
            while let Some((resource, change)) = events_rx.recv().await {
                this.observe(resource, change);
            }
        };

        let this = self.clone();
        let monitors = async move {
            let mut tasks = JoinSet::new();
            let mut running: HashMap<String, Monitor> = HashMap::new();
            loop {
                match Resources::discover(&this.client).await {
                    Ok(found) => {
                        let keys: Vec<String> = found.monitored.iter().map(|r| r.key()).collect();
                        running.retain(|k, _| keys.contains(k));
                        for r in &found.monitored {
                            running.entry(r.key()).or_insert_with(|| {
                                monitors::start(
                                    &this.client,
                                    r.clone(),
                                    events_tx.clone(),
                                    &mut tasks,
                                )
                            });
                        }
                        *this.resources.write() = Arc::new(found);
                        if !*synced_tx.borrow() {
                            let informers: Vec<_> =
                                running.values().map(|m| m.informer.clone()).collect();
                            // Upstream waits for the graph before collecting; a type that never
                            // syncs must not stop the collector for good.
                            let all = futures::future::join_all(
                                informers.iter().map(|i| i.wait_synced()),
                            );
                            let _ = tokio::time::timeout(Duration::from_secs(30), all).await;
                            synced_tx.send_replace(true);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "garbage collector discovery failed"),
                }
                // Finished monitor tasks (they run forever) are reaped here.
                while tasks.try_join_next().is_some() {}
                tokio::time::sleep(resync).await;
            }
        };

        let this = self.clone();
        let work = async move {
            let _ = synced_rx.wait_for(|s| *s).await;
            let deleter = this.clone();
            let orphaner = this.clone();
            tokio::join!(
                run_workers(
                    this.delete_queue.clone(),
                    workers,
                    COMPONENT,
                    move |uid: String| {
                        let gc = deleter.clone();
                        async move { gc.attempt_to_delete(&uid).await }
                    }
                ),
                run_workers(
                    this.orphan_queue.clone(),
                    workers,
                    COMPONENT,
                    move |uid: String| {
                        let gc = orphaner.clone();
                        async move { gc.attempt_to_orphan(&uid).await }
                    }
                ),
            );
        };
        tokio::join!(graph, monitors, work);
    }

    /// Applies one monitor change to the graph and queues what it calls for.
    fn observe(&self, resource: monitors::Resource, change: Change<monitors::Meta>) {
        let work = match change {
            Change::Applied { new, .. } => {
                let meta = &new.metadata;
                let Some(uid) = meta.uid.clone() else {
                    return;
                };
                let identity = Identity {
                    resource: resource.api.clone(),
                    namespace: meta.namespace.clone().filter(|_| resource.namespaced),
                    name: meta.name.clone().unwrap_or_default(),
                    uid,
                };
                self.graph.lock().apply(identity, meta)
            }
            Change::Deleted(old) => match &old.metadata.uid {
                Some(uid) => self.graph.lock().delete(uid),
                None => return,
            },
        };
        for w in work {
            match w {
                Work::AttemptToDelete(uid) => self.delete_queue.add(uid),
                Work::AttemptToOrphan(uid) => self.orphan_queue.add(uid),
            }
        }
    }
}
