//! The shared steps of a deployment sync (upstream's sync.go): finding the new and
//! old ReplicaSets and keeping revisions in order, creating the new ReplicaSet,
//! proportional scaling, history cleanup and status writes.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::DeploymentController;
use super::progress::{
    self, FAILED_RS_CREATE, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING, new_condition, set_condition,
};
use super::util::*;
use crate::events::{EventType, reference};
use crate::pods::controller_ref;
use crate::podutil::controller_of;
use crate::runtime::Requeue;
use crate::{Error, Result};

/// One sync of one deployment: the deployment as this sync has written it so far,
/// and the ReplicaSets it controls.
pub struct Rollout<'a> {
    pub ctl: &'a DeploymentController,
    pub d: Deployment,
    pub sets: Vec<ReplicaSet>,
    pub d_api: Api<Deployment>,
    pub rs_api: Api<ReplicaSet>,
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

impl Rollout<'_> {
    pub fn event(&self, kind: EventType, reason: &'static str, message: String) {
        let (recorder, obj) = (self.ctl.recorder.clone(), reference(&self.d));
        tokio::spawn(async move { recorder.record(&obj, kind, reason, &message).await });
    }

    fn remember(&mut self, rs: &ReplicaSet) {
        match self
            .sets
            .iter_mut()
            .find(|s| s.metadata.uid == rs.metadata.uid)
        {
            Some(slot) => *slot = rs.clone(),
            None => self.sets.push(rs.clone()),
        }
    }

    /// The new ReplicaSet (the oldest one running the current template) and the old
    /// ones; the new one's revision annotations synced, created when asked and missing.
    pub async fn get_all(&mut self, create: bool) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let template = template(&self.d);
        let mut sorted = self.sets.clone();
        sorted.sort_by_key(created_key);
        let new_pos = sorted
            .iter()
            .position(|rs| equal_ignore_hash(&rs_template(rs), &template));
        let existing = new_pos.map(|i| sorted.remove(i));
        let old = sorted;
        let new_revision = max_revision(&old) + 1;

        if let Some(rs) = existing {
            let mut copy = rs.clone();
            let annotations_changed =
                set_new_rs_annotations(&self.d, &mut copy, new_revision, true);
            let min_ready = min_ready_seconds(&self.d);
            let spec = copy.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready;
            if annotations_changed || min_ready_changed {
                spec.min_ready_seconds = Some(min_ready);
                let updated = self
                    .rs_api
                    .replace(&name(&copy.metadata), &PostParams::default(), &copy)
                    .await?;
                self.remember(&updated);
                return Ok((Some(updated), old));
            }
            let rs_revision = revision(&rs);
            let mut status = self.d.status.clone().unwrap_or_default();
            let mut status_changed = false;
            if progress_deadline(&self.d).is_some()
                && progress::get_condition(&status, PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set {:?}", name(&rs.metadata));
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "True", FOUND_NEW_RS, msg),
                );
                status_changed = true;
            }
            self.set_revision(rs_revision).await?;
            if status_changed {
                self.write_status(status).await?;
            }
            return Ok((Some(rs), old));
        }
        if !create {
            return Ok((None, old));
        }
        let created = self.create_new_rs(&old, new_revision).await?;
        Ok((Some(created), old))
    }

    async fn create_new_rs(&mut self, old: &[ReplicaSet], new_revision: i64) -> Result<ReplicaSet> {
        let d = &self.d;
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&template(d), collision_count);
        let new_template = template_with_hash(&template(d), &hash);
        let mut selector = spec(d).selector;
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let rs_name = format!("{}-{hash}", name(&d.metadata));
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: d.metadata.namespace.clone(),
                owner_references: Some(vec![controller_ref(d)]),
                labels: new_template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready_seconds(d)),
                selector,
                template: Some(new_template),
            }),
            status: None,
        };
        let mut all = old.to_vec();
        all.push(rs.clone());
        let new_replicas = new_rs_new_replicas(d, &all, &rs);
        rs.spec.get_or_insert_with(Default::default).replicas = Some(new_replicas);
        set_new_rs_annotations(d, &mut rs, new_revision, false);

        let created = match self.rs_api.create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if new_replicas > 0 {
                    let msg = format!("Scaled up replica set {rs_name} from 0 to {new_replicas}");
                    self.event(EventType::Normal, "ScalingReplicaSet", msg);
                }
                created
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours and already there (the cache is behind), or a hash collision.
                let existing = self.rs_api.get(&rs_name).await?;
                let ours = controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                if ours && equal_ignore_hash(&rs_template(&existing), &template(&self.d)) {
                    self.remember(&existing);
                    return Ok(existing);
                }
                let mut status = self.d.status.clone().unwrap_or_default();
                status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                self.write_status(status).await?;
                return Err(Error::Other(format!(
                    "hash collision for replica set {rs_name}; retrying with a new collision count"
                )));
            }
            Err(e) => {
                let msg = format!(
                    "Failed to create new replica set {rs_name:?}: {}",
                    crate::replicaset::control::api_message(&e)
                );
                self.event(EventType::Warning, "FailedCreate", msg.clone());
                if progress_deadline(&self.d).is_some() {
                    let mut status = self.d.status.clone().unwrap_or_default();
                    set_condition(
                        &mut status,
                        new_condition(PROGRESSING, "False", FAILED_RS_CREATE, msg),
                    );
                    self.write_status(status).await?;
                }
                return Err(e.into());
            }
        };
        self.remember(&created);
        if progress_deadline(&self.d).is_some() {
            let mut status = self.d.status.clone().unwrap_or_default();
            let msg = format!("Created new replica set {rs_name:?}");
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "True", NEW_RS_CREATED, msg),
            );
            self.write_status(status).await?;
        }
        self.set_revision(new_revision).await?;
        Ok(created)
    }

    /// Records the new ReplicaSet's revision on the deployment.
    async fn set_revision(&mut self, rev: i64) -> Result<()> {
        let rev = rev.to_string();
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION));
        if current == Some(&rev) {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        let updated = self
            .d_api
            .patch(
                &name(&self.d.metadata),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        self.d.metadata = updated.metadata;
        Ok(())
    }

    pub async fn write_status(&mut self, status: DeploymentStatus) -> Result<()> {
        let patch = json!({"status": progress::status_body(&status)});
        self.d_api
            .patch_status(
                &name(&self.d.metadata),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        self.d.status = Some(status);
        Ok(())
    }

    /// Scales a ReplicaSet (and brings its replica annotations up to date), recording
    /// a ScalingReplicaSet event when the size changes. The set as now stored.
    pub async fn scale_rs(
        &mut self,
        rs: &ReplicaSet,
        new_scale: i32,
    ) -> Result<(bool, ReplicaSet)> {
        let current = rs_replicas(rs);
        if current == new_scale {
            return Ok((false, rs.clone()));
        }
        let op = if current < new_scale { "up" } else { "down" };
        self.scale_rs_with(rs, new_scale, op).await
    }

    pub async fn scale_rs_with(
        &mut self,
        rs: &ReplicaSet,
        new_scale: i32,
        op: &str,
    ) -> Result<(bool, ReplicaSet)> {
        let current = rs_replicas(rs);
        let desired = replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let size_changed = current != new_scale;
        if !size_changed && !replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let mut copy = rs.clone();
        copy.spec.get_or_insert_with(Default::default).replicas = Some(new_scale);
        set_replicas_annotations(&mut copy, desired, max);
        let updated = self
            .rs_api
            .replace(&name(&copy.metadata), &PostParams::default(), &copy)
            .await?;
        self.remember(&updated);
        if size_changed {
            let msg = format!(
                "Scaled {op} replica set {} from {current} to {new_scale}",
                name(&rs.metadata)
            );
            self.event(EventType::Normal, "ScalingReplicaSet", msg);
        }
        Ok((size_changed, updated))
    }

    /// Scaling without a new template (or while paused): one active set takes all
    /// replicas, otherwise extra replicas are shared out in proportion to set sizes.
    pub async fn scale(&mut self, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<()> {
        let desired = replicas(&self.d);
        if let Some(target) = find_active_or_latest(new_rs, old) {
            if rs_replicas(&target) != desired {
                self.scale_rs(&target, desired).await?;
            }
            return Ok(());
        }
        if let Some(rs) = new_rs
            && is_saturated(&self.d, rs)
        {
            for o in active(old) {
                self.scale_rs(&o, 0).await?;
            }
            return Ok(());
        }
        if is_recreate(&self.d) {
            return Ok(());
        }
        let mut all: Vec<ReplicaSet> = old.to_vec();
        all.extend(new_rs.cloned());
        let mut all = active(&all);
        let allowed = if desired > 0 {
            desired + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - sum(&all, rs_replicas);
        let op = if to_add > 0 {
            // Larger first; newer first among equals.
            all.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| created_key(b).cmp(&created_key(a)))
            });
            "up"
        } else {
            // Larger first; older first among equals.
            all.sort_by(|a, b| {
                rs_replicas(b)
                    .cmp(&rs_replicas(a))
                    .then_with(|| created_key(a).cmp(&created_key(b)))
            });
            "down"
        };
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for rs in &all {
            let p = if to_add != 0 {
                proportion(rs, &self.d, to_add, added)
            } else {
                0
            };
            sizes.push(rs_replicas(rs) + p);
            added += p;
        }
        if to_add != 0
            && let Some(first) = sizes.first_mut()
        {
            *first = (*first + to_add - added).max(0);
        }
        for (rs, size) in all.iter().zip(sizes) {
            self.scale_rs_with(rs, size, op).await?;
        }
        Ok(())
    }

    /// Deletes the oldest old ReplicaSets beyond revisionHistoryLimit that have no pods.
    pub async fn cleanup(&mut self, old: &[ReplicaSet]) -> Result<()> {
        let limit = revision_history_limit(&self.d).max(0) as usize;
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        if cleanable.len() <= limit {
            return Ok(());
        }
        let excess = cleanable.len() - limit;
        cleanable.sort_by(|a, b| {
            revision(a)
                .cmp(&revision(b))
                .then_with(|| created_key(a).cmp(&created_key(b)))
        });
        for rs in cleanable.into_iter().take(excess) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            match self
                .rs_api
                .delete(&name(&rs.metadata), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes the status the ReplicaSets add up to, when it changed.
    pub async fn sync_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<()> {
        let status = progress::calculate(all, new_rs, &self.d);
        if progress::same_status(&self.d, &status) {
            return Ok(());
        }
        self.write_status(status).await
    }

    /// Writes the rollout's status and conditions; when to look again at a rollout
    /// that may pass its deadline.
    pub async fn sync_rollout_status(
        &mut self,
        all: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<Requeue> {
        let now = Timestamp::now();
        let status = progress::rollout_status(all, new_rs, &self.d, now);
        if progress::same_status(&self.d, &status) {
            return Ok(progress::requeue_stuck(&self.d, &status, now));
        }
        self.write_status(status).await?;
        Ok(None)
    }

    /// Whether the replica count changed since the active sets were last scaled.
    pub async fn is_scaling_event(&mut self) -> Result<bool> {
        let (new_rs, old) = self.get_all(false).await?;
        let mut all = old;
        all.extend(new_rs);
        let desired = replicas(&self.d);
        Ok(active(&all)
            .iter()
            .any(|rs| desired_replicas_annotation(rs).is_some_and(|want| want != desired)))
    }

    /// Scaling only: paused deployments and replica count changes.
    pub async fn sync(&mut self) -> Result<Requeue> {
        let (new_rs, old) = self.get_all(false).await?;
        self.scale(new_rs.as_ref(), &old).await?;
        if paused(&self.d) && self.rollback_to().is_none() {
            self.cleanup(&old).await?;
        }
        let (new_rs, old) = self.current(new_rs.as_ref(), &old);
        let mut all = old;
        all.extend(new_rs.clone());
        self.sync_status(&all, new_rs.as_ref()).await?;
        Ok(None)
    }

    /// The latest known copies of these sets, after this sync's writes.
    pub fn current(
        &self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let latest = |rs: &ReplicaSet| {
            self.sets
                .iter()
                .find(|s| s.metadata.uid == rs.metadata.uid)
                .cloned()
                .unwrap_or_else(|| rs.clone())
        };
        (new_rs.map(latest), old.iter().map(latest).collect())
    }
}

/// How many replicas the new set gets now (upstream's NewRSNewReplicas): a rolling
/// update grows it within maxSurge, Recreate gives it everything at once.
pub fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = replicas(d);
    if is_recreate(d) {
        return desired;
    }
    let current = sum(all, rs_replicas);
    let max_total = desired + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let scale_up = (max_total - current).min(desired - rs_replicas(new_rs));
    rs_replicas(new_rs) + scale_up.max(0)
}

/// The one active set, or the newest when none is active; `None` when several are.
fn find_active_or_latest(new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Option<ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    let mut old_sorted = old.to_vec();
    old_sorted.sort_by_key(|rs| std::cmp::Reverse(created_key(rs)));
    let mut all = old_sorted.clone();
    all.extend(new_rs.cloned());
    let live = active(&all);
    match live.len() {
        0 => new_rs.cloned().or_else(|| old_sorted.first().cloned()),
        1 => live.into_iter().next(),
        _ => None,
    }
}

fn is_saturated(d: &Deployment, rs: &ReplicaSet) -> bool {
    let desired = replicas(d);
    desired_replicas_annotation(rs) == Some(desired)
        && rs_replicas(rs) == desired
        && rs_available(rs) == desired
}

/// This set's share of `to_add` more (or fewer) replicas, by its size relative to
/// the deployment's size when it was last scaled (its max-replicas annotation).
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let desired = replicas(d);
    if desired == 0 {
        return -rs_replicas(rs);
    }
    let max_now = desired + max_surge(d);
    let max_before = max_replicas_annotation(rs)
        .filter(|m| *m > 0)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if max_before == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(max_now) / f64::from(max_before);
    size.round() as i32 - rs_replicas(rs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(replicas: i32) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas, "selector": {}, "template": {},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}})).unwrap()
    }

    fn rs(replicas: i32, max: i32) -> ReplicaSet {
        serde_json::from_value(
            json!({"metadata": {"name": "rs", "annotations": {MAX_REPLICAS: max.to_string()}},
            "spec": {"replicas": replicas, "selector": {}}}),
        )
        .unwrap()
    }

    #[test]
    fn new_replica_set_grows_within_surge() {
        let dep = d(3);
        let old = rs(3, 4);
        let new = rs(0, 4);
        assert_eq!(
            new_rs_new_replicas(&dep, &[old.clone(), new.clone()], &new),
            1
        );
        let new = rs(1, 4);
        assert_eq!(
            new_rs_new_replicas(&dep, &[old, new.clone()], &new),
            1,
            "at the surge limit"
        );
    }

    #[test]
    fn proportions_follow_the_previous_size() {
        // Scaling 3 (+1 surge = 4) to 7 (+1 = 8): a set of 2 gets 2 more.
        let dep = d(7);
        assert_eq!(proportion(&rs(2, 4), &dep, 4, 0), 2);
        assert_eq!(
            proportion(&rs(2, 4), &dep, 4, 3),
            1,
            "never more than is left"
        );
    }
}
