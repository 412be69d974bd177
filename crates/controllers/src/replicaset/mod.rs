//! The ReplicaSet and ReplicationController controllers (upstream's
//! pkg/controller/replicaset, which also runs replication controllers): keep
//! `spec.replicas` pods matching the selector, created from the template.

pub mod control;
pub mod kind;
pub mod ranking;
pub mod status;
pub mod sync;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;

pub use control::{ApiPodControl, PodControl};
pub use kind::ReplicaKind;
pub use sync::{BURST_REPLICAS, manage_replicas, slow_start_batch};

use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::pods::is_ready;
use crate::podutil::{controller_of, matches, refers_to};
use crate::runtime::{Change, Informer, Key, Queue, run_workers};

/// The controller of one kind of set.
pub struct ReplicaController<K, C = ApiPodControl> {
    pub(crate) client: kube::Client,
    pub(crate) sets: Informer<K>,
    pub(crate) pods: Informer<Pod>,
    pub(crate) control: C,
    pub(crate) expectations: Expectations,
    pub(crate) queue: Queue<Key>,
    pub(crate) burst: usize,
}

impl<K: ReplicaKind> ReplicaController<K, ApiPodControl> {
    pub fn new(client: kube::Client, sets: Informer<K>, pods: Informer<Pod>) -> Arc<Self> {
        let control = ApiPodControl {
            client: client.clone(),
            recorder: Recorder::new(client.clone(), K::COMPONENT),
        };
        Self::with_control(client, sets, pods, control)
    }
}

impl<K: ReplicaKind, C: PodControl> ReplicaController<K, C> {
    pub fn with_control(
        client: kube::Client,
        sets: Informer<K>,
        pods: Informer<Pod>,
        control: C,
    ) -> Arc<Self> {
        Arc::new(Self {
            client,
            sets,
            pods,
            control,
            expectations: Expectations::default(),
            queue: Queue::new(),
            burst: BURST_REPLICAS,
        })
    }

    /// Handles informer changes and runs `workers` syncs at a time, forever.
    pub async fn run(self: Arc<Self>, workers: usize) {
        let mut sets = self.sets.subscribe();
        let mut pods = self.pods.subscribe();
        let on_sets = {
            let this = self.clone();
            async move {
                while let Some(change) = sets.recv().await {
                    this.on_set(change);
                }
            }
        };
        let on_pods = {
            let this = self.clone();
            async move {
                while let Some(change) = pods.recv().await {
                    this.on_pod(change);
                }
            }
        };
        let work = {
            let this = self.clone();
            async move {
                this.sets.wait_synced().await;
                this.pods.wait_synced().await;
                let queue = this.queue.clone();
                run_workers(queue, workers, K::COMPONENT, move |key: Key| {
                    let this = this.clone();
                    async move { this.sync(&key).await }
                })
                .await
            }
        };
        tokio::join!(on_sets, on_pods, work);
    }

    fn on_set(&self, change: Change<K>) {
        match change {
            Change::Applied { new, .. } => self.queue.add(Key::of(&*new)),
            Change::Deleted(set) => {
                let key = Key::of(&*set);
                self.expectations.forget(&key.to_string());
                self.queue.add(key);
            }
        }
    }

    /// The set a controller reference points at, if it is one of ours and still exists.
    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Arc<K>> {
        if !refers_to(r, K::GROUP, &K::kind(&())) {
            return None;
        }
        let set = self.sets.get(namespace, &r.name)?;
        (set.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(set)
    }

    /// Every set whose selector matches an orphan pod.
    fn matching_sets(&self, pod: &Pod) -> Vec<Arc<K>> {
        let ns = pod.namespace().unwrap_or_default();
        self.sets
            .list(&ns)
            .into_iter()
            .filter(|s| s.selector().is_some_and(|sel| matches(&sel, &pod.metadata)))
            .collect()
    }

    fn on_pod(&self, change: Change<Pod>) {
        match change {
            Change::Applied { old: None, new } => self.pod_added(&new),
            Change::Applied {
                old: Some(old),
                new,
            } => self.pod_updated(&old, &new),
            Change::Deleted(pod) => self.pod_deleted(&pod),
        }
    }

    fn pod_added(&self, pod: &Pod) {
        if pod.metadata.deletion_timestamp.is_some() {
            // Seen for the first time already being deleted (e.g. after a restart).
            return self.pod_deleted(pod);
        }
        let ns = pod.namespace().unwrap_or_default();
        if let Some(r) = controller_of(&pod.metadata) {
            if let Some(set) = self.resolve(&ns, r) {
                let key = Key::of(&*set);
                self.expectations.creation_observed(&key.to_string());
                self.queue.add(key);
            }
            return;
        }
        for set in self.matching_sets(pod) {
            self.queue.add(Key::of(&*set));
        }
    }

    fn pod_updated(&self, old: &Pod, new: &Pod) {
        if old.metadata.resource_version == new.metadata.resource_version {
            return;
        }
        let labels_changed = old.metadata.labels != new.metadata.labels;
        if new.metadata.deletion_timestamp.is_some() {
            // A graceful deletion counts as the deletion we expected.
            self.pod_deleted(new);
            if labels_changed {
                self.pod_deleted(old);
            }
            return;
        }
        let ns = new.namespace().unwrap_or_default();
        let (old_ref, new_ref) = (controller_of(&old.metadata), controller_of(&new.metadata));
        let ref_changed = old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid);
        if ref_changed && let Some(set) = old_ref.and_then(|r| self.resolve(&ns, r)) {
            self.queue.add(Key::of(&*set));
        }
        if let Some(r) = new_ref {
            if let Some(set) = self.resolve(&ns, r) {
                let key = Key::of(&*set);
                let min_ready = set.min_ready_seconds();
                if min_ready > 0 && !is_ready(old) && is_ready(new) {
                    // Look again once it has been ready long enough to be available.
                    let after = std::time::Duration::from_secs(min_ready as u64 + 1);
                    self.queue.add_after(key.clone(), after);
                }
                self.queue.add(key);
            }
            return;
        }
        if labels_changed || ref_changed {
            for set in self.matching_sets(new) {
                self.queue.add(Key::of(&*set));
            }
        }
    }

    fn pod_deleted(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        let Some(set) = controller_of(&pod.metadata).and_then(|r| self.resolve(&ns, r)) else {
            return;
        };
        let key = Key::of(&*set);
        self.expectations
            .deletion_observed(&key.to_string(), &format!("{ns}/{}", pod.name_any()));
        self.queue.add(key);
    }
}

#[cfg(test)]
mod tests;
