//! Termination: graceful stop of a pod's containers, sandbox removal, and the final
//! delete that lets the pod leave the API.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use super::Worker;

impl Worker {
    /// Stops every container (SIGTERM, SIGKILL after `grace`), then the sandbox, and
    /// removes them.
    pub(super) async fn kill(&mut self, grace: Duration) {
        let rt = self.ctx.runtime.runtime.clone();
        let stops = self
            .containers
            .values()
            .filter_map(|r| r.id.clone())
            .map(|id| {
                let rt = rt.clone();
                async move {
                    if let Err(e) = rt.stop_container(&id, grace).await
                        && !e.is_not_found()
                    {
                        tracing::warn!(%id, error = %e, "stopping a container failed");
                    }
                }
            });
        futures::future::join_all(stops).await;
        if let Some(s) = self.sandbox.take() {
            for r in [
                rt.stop_pod_sandbox(&s.id).await,
                rt.remove_pod_sandbox(&s.id).await,
            ] {
                if let Err(e) = r
                    && !e.is_not_found()
                {
                    tracing::warn!(id = %s.id, error = %e, "removing the sandbox failed");
                }
            }
        }
        self.containers.clear();
        if let Some(uid) = &self.uid {
            crate::volumes::tear_down(&self.ctx.config, uid);
        }
    }

    /// Graceful termination and the final delete; true once the pod is gone.
    pub(super) async fn terminate(&mut self, pod: &Pod) -> bool {
        let m = &pod.metadata;
        let grace = m
            .deletion_grace_period_seconds
            .or(pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30);
        let started = Instant::now();
        self.kill(Duration::from_secs(grace.max(0) as u64)).await;
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            m.namespace.as_deref().unwrap_or("default"),
        );
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: m.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        let name = m.name.as_deref().unwrap_or_default();
        match api.delete(name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "final pod delete failed; retrying");
                return false;
            }
        }
        tracing::info!(pod = name, elapsed = ?started.elapsed(), "pod terminated and deleted");
        true
    }
}
