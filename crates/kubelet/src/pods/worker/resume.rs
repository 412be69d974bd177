//! Adoption: a pod whose sandbox and containers an earlier kubelet left running is
//! taken over as it is (same sandbox, pod IP, container IDs, restart counts and start
//! times, probes resumed) instead of being started again, as upstream's kubelet
//! reads its pods back from the runtime after a restart.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;

use super::super::adopt::{self, Found};
use super::super::probe::{Probes, Resumed};
use super::super::spec;
use super::{Rec, Sandbox, Worker};
use cri::v1::{ContainerState, PodSandboxState};

/// How long ago a CRI timestamp (nanoseconds since the epoch) was.
fn since(nanos: i64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    Duration::from_nanos(now.saturating_sub(nanos.max(0) as u128) as u64)
}

impl Worker {
    pub(super) async fn adopt(&mut self, pod: &Pod, found: Found) {
        let spec = pod.spec.clone().unwrap_or_default();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            // Never run again; what it left (its logs) stays until the pod is deleted.
            self.stale = found.others(None);
            return;
        }
        // A pod that never restarts its containers keeps even a stopped sandbox: its
        // exited containers say how it ended. Others start over in a new one.
        let never = spec.restart_policy.as_deref() == Some("Never");
        let Some(sb) = found.sandbox(never).cloned() else {
            // Its sandbox died while no kubelet watched: a new one, with the counts
            // carried on.
            self.recreate(pod, &found).await;
            return;
        };
        // The newest earlier sandbox holds each container's previous run (its lastState
        // and `logs --previous`), so it stays until the pod goes, as upstream's GC keeps
        // a dead container per name; older ones go now.
        let previous_sandbox = found
            .sandboxes
            .iter()
            .filter(|s| s.id != sb.id)
            .max_by_key(|s| s.created_at)
            .map(|s| s.id.clone());
        let mut older = found.others(Some(&sb.id));
        older.retain(|id| Some(id) != previous_sandbox.as_ref());
        adopt::remove_sandboxes(&self.ctx.runtime, &older).await;
        self.stale.extend(previous_sandbox.clone());
        let rt = self.ctx.runtime.runtime.clone();
        let ip = match rt.pod_sandbox_status(&sb.id).await {
            Ok(s) => s.status.and_then(|s| s.network).map(|n| n.ip),
            Err(e) => {
                tracing::warn!(id = %sb.id, error = %e, "sandbox status failed");
                None
            }
        };
        let mut config = spec::sandbox_config(&self.ctx.config, pod);
        if let (Some(m), Some(found)) = (config.metadata.as_mut(), sb.metadata.as_ref()) {
            m.attempt = found.attempt;
        }
        self.sandbox_attempt = config.metadata.as_ref().map_or(0, |m| m.attempt + 1);
        self.sandbox = Some(Sandbox {
            id: sb.id.clone(),
            config,
            ip: ip.unwrap_or_default(),
            stopped: sb.state != PodSandboxState::SandboxReady as i32,
        });
        if let Some(t) = crate::time::from_nanos(sb.created_at) {
            self.start_time = t;
        }
        let reported = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default();
        let events = self.recorder(pod);
        let all = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers);
        for c in all {
            let instances = found.instances(&sb.id, &c.name);
            let Some(cur) = instances.first() else {
                continue;
            };
            let current = rt.container_status(&cur.id).await.ok();
            let earlier = previous_sandbox
                .as_deref()
                .and_then(|p| found.instances(p, &c.name).first().copied());
            let previous = match instances.get(1).copied().or(earlier) {
                Some(p) => rt.container_status(&p.id).await.ok(),
                None => None,
            };
            let running = current
                .as_ref()
                .filter(|s| s.state == ContainerState::ContainerRunning as i32);
            let regular = spec.containers.iter().any(|x| x.name == c.name);
            let probes = match running {
                Some(s) if regular => {
                    let last = reported.iter().find(|r| {
                        r.name == c.name
                            && r.container_id.as_deref()
                                == Some(&format!("containerd://{}", cur.id))
                    });
                    let resumed = Resumed {
                        running_for: since(s.started_at),
                        started: last.is_some_and(|r| r.started == Some(true)),
                        ready: last.is_some_and(|r| r.ready),
                    };
                    Probes::start_with(self.target(c, &cur.id), events.clone(), Some(resumed))
                }
                _ => None,
            };
            self.containers.insert(
                c.name.clone(),
                Rec {
                    id: Some(cur.id.clone()),
                    current,
                    previous,
                    restart_count: adopt::restart_count(cur),
                    probes,
                    ..Default::default()
                },
            );
        }
        let sandbox = self.sandbox.as_ref().expect("just set");
        tracing::info!(
            pod = ?pod.metadata.name,
            sandbox = %sandbox.id,
            ip = %sandbox.ip,
            containers = self.containers.len(),
            "adopted what the earlier kubelet left running"
        );
    }
}
