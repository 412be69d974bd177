//! Rolling back through the old `deprecated.deployment.rollback.to` annotation
//! (extensions/v1beta1's rollback subresource; upstream still honours it). Today's
//! `kubectl rollout undo` patches the template itself and needs nothing here.

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::PostParams;

use super::sync::Rollout;
use super::util::*;
use crate::Result;
use crate::events::EventType;
use crate::runtime::Requeue;

impl Rollout<'_> {
    /// The revision asked for by the annotation (0: the previous one).
    pub fn rollback_to(&self) -> Option<i64> {
        let v = self.d.metadata.annotations.as_ref()?.get(ROLLBACK_TO)?;
        Some(v.parse().unwrap_or(0))
    }

    pub async fn rollback(&mut self, to: i64) -> Result<Requeue> {
        let (new_rs, old) = self.get_all(true).await?;
        let mut all = old;
        all.extend(new_rs);
        let name = self.d.metadata.name.clone().unwrap_or_default();
        let to = if to == 0 { last_revision(&all) } else { to };
        if to == 0 {
            let msg = "Unable to find last revision.".to_string();
            self.event(
                EventType::Warning,
                "DeploymentRollbackRevisionNotFound",
                msg,
            );
            return self.clear_rollback_to(None).await;
        }
        let Some(target) = all.iter().find(|rs| revision(rs) == to).cloned() else {
            let msg = "Unable to find the revision to rollback to.".to_string();
            self.event(
                EventType::Warning,
                "DeploymentRollbackRevisionNotFound",
                msg,
            );
            return self.clear_rollback_to(None).await;
        };
        if equal_ignore_hash(&template(&self.d), &rs_template(&target)) {
            let msg = format!(
                "The rollback revision contains the same template as current deployment {name:?}"
            );
            self.event(
                EventType::Warning,
                "DeploymentRollbackTemplateUnchanged",
                msg,
            );
            return self.clear_rollback_to(None).await;
        }
        let result = self.clear_rollback_to(Some(&target)).await;
        if result.is_ok() {
            let msg = format!("Rolled back deployment {name:?} to revision {to}");
            self.event(EventType::Normal, "DeploymentRollback", msg);
        }
        result
    }

    /// Removes the annotation, and with `target` copies its template (without the
    /// hash label) and annotations into the deployment, in one update.
    async fn clear_rollback_to(&mut self, target: Option<&ReplicaSet>) -> Result<Requeue> {
        let mut d = self.d.clone();
        if let Some(rs) = target {
            let mut t = rs_template(rs);
            if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                labels.remove(POD_TEMPLATE_HASH);
            }
            d.spec.get_or_insert_with(Default::default).template = t;
            d.metadata.annotations = Some(annotations_after_rollback(&self.d, rs));
        }
        if let Some(a) = d.metadata.annotations.as_mut() {
            a.remove(ROLLBACK_TO);
        }
        let name = d.metadata.name.clone().unwrap_or_default();
        self.d = self
            .d_api
            .replace(&name, &PostParams::default(), &d)
            .await?;
        Ok(None)
    }
}
