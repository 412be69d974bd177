//! The RollingUpdate strategy (upstream's rolling.go): grow the new ReplicaSet within
//! maxSurge, shrink old ones while keeping replicas - maxUnavailable available,
//! removing unhealthy old replicas first.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::progress;
use super::sync::{Rollout, new_rs_new_replicas};
use super::util::*;
use crate::Result;
use crate::runtime::Requeue;

impl Rollout<'_> {
    pub async fn rollout_rolling(&mut self) -> Result<Requeue> {
        let (new_rs, old) = self.get_all(true).await?;
        let Some(new_rs) = new_rs else {
            return Ok(None);
        };
        let mut all = old.clone();
        all.push(new_rs.clone());

        if self.reconcile_new_rs(&all, &new_rs).await? {
            return self.sync_rollout_status(&all, Some(&new_rs)).await;
        }
        if self.reconcile_old_rss(&all, active(&old), &new_rs).await? {
            return self.sync_rollout_status(&all, Some(&new_rs)).await;
        }
        if progress::complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&all, Some(&new_rs)).await
    }

    async fn reconcile_new_rs(&mut self, all: &[ReplicaSet], new_rs: &ReplicaSet) -> Result<bool> {
        let desired = replicas(&self.d);
        let current = rs_replicas(new_rs);
        if current == desired {
            return Ok(false);
        }
        let target = if current > desired {
            desired
        } else {
            new_rs_new_replicas(&self.d, all, new_rs)
        };
        Ok(self.scale_rs(new_rs, target).await?.0)
    }

    async fn reconcile_old_rss(
        &mut self,
        all: &[ReplicaSet],
        old: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> Result<bool> {
        if sum(&old, rs_replicas) == 0 {
            return Ok(false);
        }
        let all_pods = sum(all, rs_replicas);
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy old replicas go first: they would otherwise block the rollout.
        let (old, cleaned) = self.cleanup_unhealthy(old, max_scaled_down).await?;
        let mut all = old.clone();
        all.push(new_rs.clone());
        let scaled = self.scale_down_old_for_rolling(&all, old).await?;
        Ok(cleaned + scaled > 0)
    }

    async fn cleanup_unhealthy(
        &mut self,
        mut old: Vec<ReplicaSet>,
        max_cleanup: i32,
    ) -> Result<(Vec<ReplicaSet>, i32)> {
        old.sort_by_key(created_key);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let (want, available) = (rs_replicas(rs), rs_available(rs));
            if want == 0 || want == available {
                continue;
            }
            let count = (max_cleanup - total).min(want - available);
            let (_, updated) = self.scale_rs(rs, want - count).await?;
            total += count;
            *rs = updated;
        }
        Ok((old, total))
    }

    async fn scale_down_old_for_rolling(
        &mut self,
        all: &[ReplicaSet],
        mut old: Vec<ReplicaSet>,
    ) -> Result<i32> {
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let available = sum(all, rs_available);
        if available <= min_available {
            return Ok(0);
        }
        let budget = available - min_available;
        old.sort_by_key(created_key);
        let mut total = 0;
        for rs in &old {
            if total >= budget {
                break;
            }
            let want = rs_replicas(rs);
            if want == 0 {
                continue;
            }
            let count = want.min(budget - total);
            self.scale_rs(rs, want - count).await?;
            total += count;
        }
        Ok(total)
    }
}
