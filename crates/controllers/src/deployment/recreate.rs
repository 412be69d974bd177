//! The Recreate strategy (upstream's recreate.go): scale every old ReplicaSet to zero,
//! wait until none of their pods runs, then bring up the new one in full.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::progress;
use super::sync::Rollout;
use super::util::*;
use crate::Result;
use crate::pods::phase;
use crate::podutil::controller_of;
use crate::runtime::Requeue;

impl Rollout<'_> {
    pub async fn rollout_recreate(&mut self) -> Result<Requeue> {
        let (mut new_rs, mut old) = self.get_all(false).await?;
        let mut all = old.clone();
        all.extend(new_rs.clone());

        let mut scaled_down = false;
        for rs in active(&old) {
            scaled_down |= self.scale_rs(&rs, 0).await?.0;
        }
        if scaled_down || self.old_pods_running(new_rs.as_ref(), &old) {
            return self.sync_rollout_status(&all, new_rs.as_ref()).await;
        }
        if new_rs.is_none() {
            (new_rs, old) = self.get_all(true).await?;
            all = old.clone();
            all.extend(new_rs.clone());
        }
        if let Some(rs) = &new_rs {
            let desired = replicas(&self.d);
            if rs_replicas(rs) != desired {
                self.scale_rs(rs, desired).await?;
            }
        }
        if progress::complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&all, new_rs.as_ref()).await
    }

    /// Whether an old ReplicaSet still has pods that have not finished (terminating
    /// ones included): Recreate never runs old and new pods side by side.
    fn old_pods_running(&self, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> bool {
        if sum(old, rs_status_replicas) > 0 {
            return true;
        }
        let new_uid = new_rs.and_then(|rs| rs.metadata.uid.clone());
        let old_uids: HashSet<String> = self
            .sets
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .filter(|u| Some(u) != new_uid.as_ref())
            .collect();
        let ns = self.d.metadata.namespace.clone().unwrap_or_default();
        self.ctl.pods.list(&ns).iter().any(|p| {
            controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(phase(p), "Succeeded" | "Failed")
        })
    }
}
