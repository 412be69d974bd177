//! Termination: graceful stop of a pod's containers, sandbox removal, and the final
//! delete that lets the pod leave the API.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{DeleteParams, Preconditions};

use super::Worker;

/// The pod's terminationGracePeriodSeconds (default 30).
pub(super) fn spec_grace(pod: &Pod) -> Duration {
    let spec = pod.spec.as_ref();
    let secs = spec.and_then(|s| s.termination_grace_period_seconds);
    Duration::from_secs(secs.unwrap_or(30).max(0) as u64)
}

impl Worker {
    /// Stops every container ([`Self::stop_containers`]), then the sandbox, and removes
    /// them and the pod's volumes.
    pub(super) async fn kill(&mut self, pod: Option<&Pod>, grace: Duration) {
        self.stop_containers(pod, grace).await;
        let rt = self.ctx.runtime.runtime.clone();
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
        let stale = std::mem::take(&mut self.stale);
        super::super::adopt::remove_sandboxes(&self.ctx.runtime, &stale).await;
        self.containers.clear();
        if let Some(uid) = &self.uid {
            crate::volumes::tear_down(&self.ctx.config, uid);
        }
    }

    /// Stops the pod's containers (SIGTERM, SIGKILL after `grace`) but keeps them and
    /// the sandbox. Given the pod, running containers get a Killing event and their
    /// preStop hooks first, as upstream's killContainer.
    pub(super) async fn stop_containers(&mut self, pod: Option<&Pod>, grace: Duration) {
        let rt = self.ctx.runtime.runtime.clone();
        let events = pod.map(|p| self.recorder(p));
        let specs: Vec<Container> = pod
            .and_then(|p| p.spec.as_ref())
            .map(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .chain(&s.containers)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut live = Vec::new();
        for (name, rec) in &mut self.containers {
            // Probes end with the container's life.
            rec.probes = None;
            if let Some(id) = rec.id.clone() {
                let running = rec.current.as_ref().is_some_and(|s| !super::exited(s));
                live.push((name.clone(), id, running));
            }
        }
        let targets: Vec<_> = live
            .into_iter()
            .map(|(name, id, running)| {
                let spec = specs.iter().find(|c| c.name == name).filter(|_| running);
                let target = spec.map(|c| self.target(c, &id));
                (id, target)
            })
            .collect();
        let stops = targets.into_iter().map(|(id, target)| {
            let (rt, events) = (rt.clone(), events.clone());
            async move {
                if let (Some(t), Some(events), Some(pod)) = (target, events, pod) {
                    let message = format!("Stopping container {}", t.container.name);
                    events
                        .container(&t.container.name, false, "Killing", &message)
                        .await;
                    super::hooks::stop_with_hook(rt, &events, pod, &t, grace).await;
                } else if let Err(e) = rt.stop_container(&id, grace).await
                    && !e.is_not_found()
                {
                    tracing::warn!(%id, error = %e, "stopping a container failed");
                }
            }
        });
        futures::future::join_all(stops).await;
    }

    /// Graceful termination and the final delete; true once the pod is gone.
    pub(super) async fn terminate(&mut self, pod: &Pod) -> bool {
        let m = &pod.metadata;
        let grace = match m.deletion_grace_period_seconds {
            Some(s) => Duration::from_secs(s.max(0) as u64),
            None => spec_grace(pod),
        };
        let started = Instant::now();
        self.kill(Some(pod), grace).await;
        if self.is_static {
            // Its file is gone; the pods loop deletes the mirror pod.
            tracing::info!(pod = ?m.name, elapsed = ?started.elapsed(), "static pod stopped");
            return true;
        }
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
