//! What happens around a container's life besides starting it: the postStart hook
//! and probes after it starts, and upstream's killContainer (a Killing event, the
//! preStop hook within the grace period, then the stop) for liveness failures, failed
//! postStart hooks and pod deletion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cri::RuntimeService;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::super::events::Recorder;
use super::super::lifecycle;
use super::super::probe::action::Target;
use super::super::probe::{Kind, Probes};
use super::Worker;

/// Upstream's minimumGracePeriodInSeconds: what is left of the grace period after a
/// preStop hook is never less than this.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// The pod's terminationGracePeriodSeconds (default 30).
pub(super) fn pod_grace(pod: &Pod) -> Duration {
    let secs = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

/// Runs the container's preStop hook (if any, and if there is a grace period to run
/// it in), then stops the container with what is left of `grace`.
pub(super) async fn stop_with_hook(
    rt: Arc<dyn RuntimeService>,
    events: &Recorder,
    pod: &Pod,
    target: &Target,
    grace: Duration,
) {
    let mut grace = grace;
    let hook = target
        .container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref());
    if let Some(h) = hook.filter(|_| !grace.is_zero()) {
        let started = Instant::now();
        if let Err(msg) = lifecycle::run(h, target, pod, grace).await {
            let name = &target.container.name;
            events
                .container(name, true, "FailedPreStopHook", &msg)
                .await;
        }
        grace = grace.saturating_sub(started.elapsed()).max(MIN_GRACE);
    }
    let id = &target.container_id;
    if let Err(e) = rt.stop_container(id, grace).await
        && !e.is_not_found()
    {
        tracing::warn!(%id, error = %e, "stopping a container failed");
    }
}

impl Worker {
    pub(super) fn recorder(&mut self, pod: &Pod) -> Recorder {
        let (client, node) = (&self.ctx.client, &self.ctx.config.node_name);
        self.events
            .get_or_insert_with(|| Recorder::new(client.clone(), node, pod))
            .clone()
    }

    pub(super) fn target(&self, c: &Container, id: &str) -> Target {
        let ip = self
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        Target {
            runtime: self.ctx.runtime.runtime.clone(),
            container_id: id.to_string(),
            // Host-network pods have no sandbox IP: they are on the node's.
            pod_ip: if ip.is_empty() {
                self.ctx.config.node_ip.to_string()
            } else {
                ip
            },
            container: c.clone(),
        }
    }

    /// After a container started: its postStart hook, then its probes (regular
    /// containers only). `Err` when the hook failed and the container was killed.
    pub(super) async fn after_start(
        &mut self,
        pod: &Pod,
        c: &Container,
        id: &str,
    ) -> Result<Option<Probes>, ()> {
        let target = self.target(c, id);
        let events = self.recorder(pod);
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let grace = pod_grace(pod);
            if let Err(msg) = lifecycle::run(h, &target, pod, grace).await {
                events
                    .container(&c.name, true, "FailedPostStartHook", &msg)
                    .await;
                events
                    .container(&c.name, false, "Killing", "FailedPostStartHook")
                    .await;
                let rt = self.ctx.runtime.runtime.clone();
                stop_with_hook(rt, &events, pod, &target, grace).await;
                return Err(());
            }
        }
        let regular = pod
            .spec
            .as_ref()
            .is_some_and(|s| s.containers.iter().any(|x| x.name == c.name));
        Ok(regular.then(|| Probes::start(target, events)).flatten())
    }

    /// Kills a container whose liveness (or startup) probe failed, as upstream: the
    /// probe's own terminationGracePeriodSeconds or the pod's; the restart follows
    /// restartPolicy like any other exit.
    pub(super) async fn kill_unhealthy(
        &mut self,
        pod: &Pod,
        c: &Container,
        id: &str,
        kind: Kind,
        policy: &str,
    ) {
        let mut message = format!("Container {} failed {} probe", c.name, kind.lower());
        if policy != "Never" {
            message.push_str(", will be restarted");
        }
        let probe = match kind {
            Kind::Startup => c.startup_probe.as_ref(),
            _ => c.liveness_probe.as_ref(),
        };
        let grace = probe
            .and_then(|p| p.termination_grace_period_seconds)
            .map_or_else(|| pod_grace(pod), |s| Duration::from_secs(s.max(0) as u64));
        let events = self.recorder(pod);
        events.container(&c.name, false, "Killing", &message).await;
        let target = self.target(c, id);
        let rt = self.ctx.runtime.runtime.clone();
        stop_with_hook(rt.clone(), &events, pod, &target, grace).await;
        let status = rt.container_status(id).await.ok();
        if let Some(rec) = self.containers.get_mut(&c.name) {
            rec.probes = None;
            if status.is_some() {
                rec.current = status;
            }
        }
    }
}
