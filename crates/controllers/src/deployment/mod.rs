//! The Deployment controller (upstream's pkg/controller/deployment): rolls pod
//! templates out through ReplicaSets, one per template (`<name>-<pod-template-hash>`),
//! with the RollingUpdate or Recreate strategy, revisions, rollback, pausing,
//! proportional scaling, history cleanup and progress deadlines.

pub mod progress;
pub mod recreate;
pub mod rollback;
pub mod rolling;
pub mod sync;
pub mod util;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

pub use sync::Rollout;

use crate::Result;
use crate::events::{EventType, Recorder};
use crate::pods::controller_ref;
use crate::podutil::{controller_of, matches, refers_to, selector};
use crate::refmanager::RefManager;
use crate::runtime::{Change, Informer, Key, Queue, Requeue, run_workers};

pub const COMPONENT: &str = "deployment-controller";

pub struct DeploymentController {
    pub(crate) client: kube::Client,
    pub(crate) deployments: Informer<Deployment>,
    pub(crate) replicasets: Informer<ReplicaSet>,
    pub(crate) pods: Informer<Pod>,
    pub(crate) recorder: Recorder,
    pub(crate) queue: Queue<Key>,
}

impl DeploymentController {
    pub fn new(
        client: kube::Client,
        deployments: Informer<Deployment>,
        replicasets: Informer<ReplicaSet>,
        pods: Informer<Pod>,
    ) -> Arc<Self> {
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), COMPONENT),
            client,
            deployments,
            replicasets,
            pods,
            queue: Queue::new(),
        })
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        let mut deployments = self.deployments.subscribe();
        let mut sets = self.replicasets.subscribe();
        let mut pods = self.pods.subscribe();
        let this = self.clone();
        let on_deployments = async move {
            while let Some(change) = deployments.recv().await {
                let (Change::Applied { new: d, .. } | Change::Deleted(d)) = change;
                this.queue.add(Key::of(&*d));
            }
        };
        let this = self.clone();
        let on_sets = async move {
            while let Some(change) = sets.recv().await {
                this.on_replicaset(change);
            }
        };
        let this = self.clone();
        let on_pods = async move {
            while let Some(change) = pods.recv().await {
                if let Change::Deleted(pod) = change {
                    this.on_pod_deleted(&pod);
                }
            }
        };
        let this = self.clone();
        let work = async move {
            this.deployments.wait_synced().await;
            this.replicasets.wait_synced().await;
            this.pods.wait_synced().await;
            let queue = this.queue.clone();
            run_workers(queue, workers, COMPONENT, move |key: Key| {
                let this = this.clone();
                async move { this.sync(&key).await }
            })
            .await
        };
        tokio::join!(on_deployments, on_sets, on_pods, work);
    }

    fn resolve(&self, namespace: &str, r: &OwnerReference) -> Option<Arc<Deployment>> {
        if !refers_to(r, "apps", "Deployment") {
            return None;
        }
        let d = self.deployments.get(namespace, &r.name)?;
        (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
    }

    fn enqueue_matching(&self, rs: &ReplicaSet) {
        let ns = rs.namespace().unwrap_or_default();
        for d in self.deployments.list(&ns) {
            let sel = selector(d.spec.as_ref().map(|s| &s.selector));
            if sel.is_some_and(|s| matches(&s, &rs.metadata)) {
                self.queue.add(Key::of(&*d));
            }
        }
    }

    fn on_replicaset(&self, change: Change<ReplicaSet>) {
        let (old, new) = match change {
            Change::Applied { old, new } => (old, new),
            Change::Deleted(rs) => {
                let ns = rs.namespace().unwrap_or_default();
                if let Some(d) = controller_of(&rs.metadata).and_then(|r| self.resolve(&ns, r)) {
                    self.queue.add(Key::of(&*d));
                }
                return;
            }
        };
        if old
            .as_ref()
            .is_some_and(|o| o.metadata.resource_version == new.metadata.resource_version)
        {
            return;
        }
        let ns = new.namespace().unwrap_or_default();
        let new_ref = controller_of(&new.metadata);
        let old_ref = old.as_ref().and_then(|o| controller_of(&o.metadata));
        let ref_changed = old.is_some() && old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid);
        if ref_changed && let Some(d) = old_ref.and_then(|r| self.resolve(&ns, r)) {
            self.queue.add(Key::of(&*d));
        }
        if let Some(r) = new_ref {
            if let Some(d) = self.resolve(&ns, r) {
                self.queue.add(Key::of(&*d));
            }
            return;
        }
        let labels_changed = old
            .as_ref()
            .is_none_or(|o| o.metadata.labels != new.metadata.labels);
        if new.metadata.deletion_timestamp.is_none() && (labels_changed || ref_changed) {
            self.enqueue_matching(&new);
        }
    }

    /// Recreate waits for the old pods to be gone: their deletion moves it on.
    fn on_pod_deleted(&self, pod: &Pod) {
        let ns = pod.namespace().unwrap_or_default();
        let Some(rs_ref) =
            controller_of(&pod.metadata).filter(|r| refers_to(r, "apps", "ReplicaSet"))
        else {
            return;
        };
        let Some(rs) = self.replicasets.get(&ns, &rs_ref.name) else {
            return;
        };
        if let Some(d) = controller_of(&rs.metadata).and_then(|r| self.resolve(&ns, r))
            && util::is_recreate(&d)
        {
            self.queue.add(Key::of(&*d));
        }
    }

    /// The ReplicaSets this deployment controls, after adopting and releasing.
    async fn claim_replicasets(&self, d: &Deployment, ns: &str) -> Result<Vec<ReplicaSet>> {
        let Some(sel) = selector(d.spec.as_ref().map(|s| &s.selector)) else {
            return Ok(Vec::new());
        };
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let d_api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let manager = RefManager::new(d, d_api, &sel, controller_ref(d));
        let claimed = manager
            .claim(|_| rs_api.clone(), self.replicasets.list(ns))
            .await?;
        Ok(claimed.into_iter().map(|rs| (*rs).clone()).collect())
    }

    /// One sync of a deployment (upstream's syncDeployment).
    pub async fn sync(&self, key: &Key) -> Result<Requeue> {
        let Some(d) = self.deployments.get(&key.namespace, &key.name) else {
            return Ok(None);
        };
        let d = (*d).clone();
        let d_api: Api<Deployment> = Api::namespaced(self.client.clone(), &key.namespace);
        if selector(d.spec.as_ref().map(|s| &s.selector)).is_none() {
            let msg = "This deployment is selecting all pods. A non-empty selector is required.";
            self.recorder
                .record(
                    &crate::events::reference(&d),
                    EventType::Warning,
                    "SelectingAll",
                    msg,
                )
                .await;
            let generation = d.metadata.generation.unwrap_or(0);
            if d.status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0)
                < generation
            {
                let patch = json!({"status": {"observedGeneration": generation}});
                d_api
                    .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            return Ok(None);
        }
        let sets = self.claim_replicasets(&d, &key.namespace).await?;
        let mut rollout = Rollout {
            ctl: self,
            d,
            sets,
            d_api,
            rs_api: Api::namespaced(self.client.clone(), &key.namespace),
        };
        if rollout.d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = rollout.get_all(false).await?;
            let mut all = old;
            all.extend(new_rs.clone());
            rollout.sync_status(&all, new_rs.as_ref()).await?;
            return Ok(None);
        }
        rollout.check_paused_conditions().await?;
        if util::paused(&rollout.d) {
            return rollout.sync().await;
        }
        if let Some(to) = rollout.rollback_to() {
            return rollout.rollback(to).await;
        }
        if rollout.is_scaling_event().await? {
            return rollout.sync().await;
        }
        if util::is_recreate(&rollout.d) {
            rollout.rollout_recreate().await
        } else {
            rollout.rollout_rolling().await
        }
    }
}

impl Rollout<'_> {
    /// A paused deployment says so in its Progressing condition (and that it resumed),
    /// so time spent paused never counts against the progress deadline.
    async fn check_paused_conditions(&mut self) -> Result<()> {
        if util::progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut status = self.d.status.clone().unwrap_or_default();
        let reason =
            progress::get_condition(&status, progress::PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(progress::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(progress::PAUSED);
        let cond = match (util::paused(&self.d), paused_cond) {
            (true, false) => progress::new_condition(
                progress::PROGRESSING,
                "Unknown",
                progress::PAUSED,
                "Deployment is paused".into(),
            ),
            (false, true) => progress::new_condition(
                progress::PROGRESSING,
                "Unknown",
                progress::RESUMED,
                "Deployment is resumed".into(),
            ),
            _ => return Ok(()),
        };
        progress::set_condition(&mut status, cond);
        self.write_status(status).await
    }
}
