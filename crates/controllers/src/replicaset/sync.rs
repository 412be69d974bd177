//! One sync of a set: claim the pods its selector matches, create or delete pods to
//! reach `spec.replicas` (unless earlier creations/deletions are still unobserved),
//! then write the status.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::ReplicaController;
use super::control::{PodControl, api_message};
use super::kind::ReplicaKind;
use super::ranking::pods_to_delete;
use super::status::calculate;
use crate::events::reference;
use crate::expectations::Expectations;
use crate::pods::{controller_ref, is_active, pod_from_template};
use crate::podutil::{controller_of, until_available};
use crate::refmanager::RefManager;
use crate::runtime::{Key, Requeue};
use crate::{Error, Result};

/// Upstream's burstReplicas: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;

impl<K: ReplicaKind, C: PodControl> ReplicaController<K, C> {
    pub async fn sync(&self, key: &Key) -> Result<Requeue> {
        let exp_key = key.to_string();
        let Some(set) = self.sets.get(&key.namespace, &key.name) else {
            self.expectations.forget(&exp_key);
            return Ok(None);
        };
        let needs_sync = self.expectations.satisfied(&exp_key);
        let Some(selector) = set.selector() else {
            tracing::debug!(set = %key, "invalid or empty selector; not syncing");
            return Ok(None);
        };
        let active: Vec<Arc<Pod>> = self
            .pods
            .list(&key.namespace)
            .into_iter()
            .filter(|p| is_active(p))
            .collect();
        let sets_api: Api<K> = Api::namespaced(self.client.clone(), &key.namespace);
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let manager = RefManager::new(&*set, sets_api.clone(), &selector, controller_ref(&*set));
        let pods = manager.claim(|_| pods_api.clone(), active).await?;

        let mut manage_error = None;
        if needs_sync && set.meta().deletion_timestamp.is_none() {
            let related = self.related_pods(&set);
            if let Err(e) = manage_replicas(
                &self.control,
                &self.expectations,
                &*set,
                &pods,
                &related,
                self.burst,
            )
            .await
            {
                manage_error = Some(e);
            }
        }
        let now = Timestamp::now();
        let message = manage_error.as_ref().map(ToString::to_string);
        let status = calculate(&*set, &pods, message.as_deref(), now);
        if !set.has_status() || status != set.set_status() {
            let mut body =
                serde_json::to_value(&status).map_err(|e| Error::Other(e.to_string()))?;
            if status.conditions.is_empty() {
                body["conditions"] = serde_json::Value::Null;
            }
            sets_api
                .patch_status(
                    &set.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": body})),
                )
                .await?;
        }
        if let Some(e) = manage_error {
            return Err(e);
        }
        let min_ready = set.min_ready_seconds();
        Ok(pods
            .iter()
            .filter_map(|p| until_available(p, min_ready, now))
            .min())
    }

    /// The active pods of this set and of its siblings (sets with the same controller),
    /// used to spread deletions across nodes.
    fn related_pods(&self, set: &K) -> Vec<Arc<Pod>> {
        let ns = set.namespace().unwrap_or_default();
        let own_uid = set.meta().uid.clone().unwrap_or_default();
        let owners: HashSet<String> = match controller_of(set.meta()) {
            Some(owner) => self
                .sets
                .list(&ns)
                .iter()
                .filter(|s| controller_of(s.meta()).is_some_and(|r| r.uid == owner.uid))
                .filter_map(|s| s.meta().uid.clone())
                .chain([own_uid])
                .collect(),
            None => [own_uid].into(),
        };
        self.pods
            .list(&ns)
            .into_iter()
            .filter(|p| {
                is_active(p) && controller_of(&p.metadata).is_some_and(|r| owners.contains(&r.uid))
            })
            .collect()
    }
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

fn terminating_namespace(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("because it is being terminated"))
}

/// Creates or deletes pods so that `set` has `spec.replicas` of them, at most `burst`
/// per sync, recording what it expects to observe.
pub async fn manage_replicas<K: ReplicaKind, C: PodControl>(
    control: &C,
    expectations: &Expectations,
    set: &K,
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    burst: usize,
) -> Result<()> {
    let ns = set.namespace().unwrap_or_default();
    let name = set.name_any();
    let key = format!("{ns}/{name}");
    let owner = reference(set);
    let diff = pods.len() as i64 - i64::from(set.replicas());
    if diff < 0 {
        let want = (diff.unsigned_abs() as usize).min(burst);
        let Some(template) = set.template() else {
            return Err(Error::Other(format!("{name} has no pod template")));
        };
        expectations.expect_creations(&key, want);
        let mut pod = pod_from_template(
            template,
            &format!("{name}-"),
            controller_ref(set),
            &BTreeMap::new(),
        );
        pod.metadata.namespace = Some(ns.clone());
        let (created, error) = slow_start_batch(want, 1, || async {
            match control.create(pod.clone(), &owner).await {
                Ok(_) => Ok(true),
                Err(e) if terminating_namespace(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await;
        // Creations that failed or were never tried will not be observed.
        for _ in created..want {
            expectations.creation_observed(&key);
        }
        if let Some(e) = error {
            return Err(Error::Other(api_message(&e)));
        }
    } else if diff > 0 {
        let count = (diff as usize).min(burst);
        let victims = pods_to_delete(pods.to_vec(), related, count, Timestamp::now());
        expectations.expect_deletions(&key, victims.iter().map(|p| pod_key(p)));
        let results = futures::future::join_all(victims.iter().map(|p| {
            let owner = &owner;
            async move {
                (
                    p,
                    control
                        .delete(p.metadata.name.as_deref().unwrap_or_default(), owner)
                        .await,
                )
            }
        }))
        .await;
        let mut first_error = None;
        for (p, result) in results {
            if let Err(e) = result {
                expectations.deletion_observed(&key, &pod_key(p));
                if !matches!(&e, kube::Error::Api(s) if s.code == 404) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(Error::Other(api_message(&e)));
        }
    }
    Ok(())
}

/// Runs `count` calls of `f` in batches of 1, 2, 4, … (upstream's slowStartBatch), so
/// a call that fails every time (quota, admission) fails once rather than `count`
/// times. Returns how many succeeded (calls yielding `Ok(true)`) and the first error.
pub async fn slow_start_batch<F, Fut, E>(count: usize, initial: usize, f: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        let results = futures::future::join_all((0..batch).map(|_| f())).await;
        let mut error = None;
        for r in results {
            match r {
                Ok(true) => successes += 1,
                Ok(false) => {}
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        if error.is_some() {
            return (successes, error);
        }
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    (successes, None)
}
