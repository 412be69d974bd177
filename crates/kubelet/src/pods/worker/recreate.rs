//! A pod whose sandbox died (its processes killed, the node rebooted, the runtime's
//! state lost), whether found so at start or seen once one of its containers exited,
//! starts over as upstream's computePodActions has it: the dead sandbox is stopped and a new one made with the next attempt, and
//! every container starts again in it as a restart. Its restartCount carries on from
//! the dead container's, else from the `<n>.log` files earlier attempts left (as
//! upstream's calcRestartCountByLogDir), else from the pod's last reported status; the
//! dead container is its lastState. Init containers run again from the first, as
//! upstream purges them with the sandbox.

use std::time::{Duration, Instant};

use cri::v1::PodSandboxState;
use k8s_openapi::api::core::v1::{ContainerStatus as ApiStatus, Pod};

use super::super::adopt::{self, Found};
use super::super::spec;
use super::{Rec, Worker, exited};

/// How often the sandbox of a pod whose containers all run is checked.
const SANDBOX_CHECK: Duration = Duration::from_secs(5);

/// Whether the pod's reported status shows containers that ran (not a new pod).
pub fn ran_before(pod: &Pod) -> bool {
    reported(pod).iter().any(|s| s.container_id.is_some())
}

fn reported(pod: &Pod) -> Vec<ApiStatus> {
    let status = pod.status.clone().unwrap_or_default();
    let init = status.init_container_statuses.into_iter().flatten();
    init.chain(status.container_statuses.into_iter().flatten())
        .collect()
}

impl Worker {
    /// Re-creates the running sandbox if it died. Asked every sync once a container
    /// exited (how a dead sandbox usually shows) and every [`SANDBOX_CHECK`] otherwise
    /// (only the pause process dying shows no other way; upstream's PLEG lists
    /// sandboxes every second). Containers still running in a dead sandbox are stopped
    /// first, as upstream kills the pod before re-creating it; a never-restarting pod's
    /// are stopped and left to finish.
    pub(super) async fn check_sandbox(&mut self, pod: &Pod) {
        let Some(s) = self.sandbox.as_ref().filter(|s| !s.stopped) else {
            return;
        };
        let spec = pod.spec.as_ref();
        let never = spec.and_then(|s| s.restart_policy.as_deref()) == Some("Never");
        let states = || self.containers.values().filter_map(|r| r.current.as_ref());
        let any_exited = states().any(exited);
        let any_running = states().any(|s| !exited(s));
        let due = self
            .sandbox_checked
            .is_none_or(|t| t.elapsed() >= SANDBOX_CHECK);
        if (never && !any_running) || !(any_exited || due) {
            return;
        }
        self.sandbox_checked = Some(Instant::now());
        let rt = self.ctx.runtime.runtime.clone();
        let ready = PodSandboxState::SandboxReady as i32;
        let alive = match rt.pod_sandbox_status(&s.id).await {
            Ok(r) => r.status.is_none_or(|st| st.state == ready),
            Err(e) => !e.is_not_found(),
        };
        if alive {
            return;
        }
        if any_running {
            tracing::info!(pod = ?pod.metadata.name, "the pod's sandbox died; stopping its containers");
            self.stop_containers(Some(pod), super::terminate::spec_grace(pod))
                .await;
        }
        if never {
            return;
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let found = match adopt::list(&self.ctx.runtime).await {
            Ok(mut all) => all.remove(uid).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the runtime's sandboxes");
                return;
            }
        };
        self.sandbox = None;
        self.containers.clear();
        self.recreate(pod, &found).await;
    }

    pub(super) async fn recreate(&mut self, pod: &Pod, found: &Found) {
        let rt = self.ctx.runtime.runtime.clone();
        let dead = found.sandbox(true).cloned();
        let dead_id = dead.as_ref().map(|s| s.id.clone());
        adopt::remove_sandboxes(&self.ctx.runtime, &found.others(dead_id.as_deref())).await;
        if let Some(d) = &dead {
            // Stopped (its network released), kept for its containers' logs until the
            // pod goes.
            if let Err(e) = rt.stop_pod_sandbox(&d.id).await {
                tracing::warn!(id = %d.id, error = %e, "stopping a dead sandbox failed");
            }
            self.stale.push(d.id.clone());
            self.sandbox_attempt = d.metadata.as_ref().map_or(0, |m| m.attempt + 1);
            let message = "Pod sandbox changed, it will be killed and re-created.";
            self.recorder(pod)
                .pod(false, "SandboxChanged", message)
                .await;
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let reported = reported(pod);
        let log_dir = spec::pod_log_dir(&self.ctx.config, pod);
        let init = spec.init_containers.iter().flatten().map(|c| (c, true));
        for (c, is_init) in init.chain(spec.containers.iter().map(|c| (c, false))) {
            let instances = match &dead_id {
                Some(id) => found.instances(id, &c.name),
                None => Vec::new(),
            };
            let newest = instances.first();
            let from_api = reported
                .iter()
                .find(|r| r.name == c.name)
                .filter(|r| r.container_id.is_some() || r.restart_count > 0)
                .map(|r| r.restart_count.max(0) as u32);
            let counts = [
                newest.map(|n| adopt::restart_count(n)),
                adopt::last_logged_attempt(&log_dir.join(&c.name)),
                from_api,
            ];
            let Some(restart_count) = counts.into_iter().flatten().max() else {
                continue;
            };
            let current = match newest {
                Some(n) => rt.container_status(&n.id).await.ok(),
                None => None,
            };
            let previous = match instances.get(1) {
                Some(p) => rt.container_status(&p.id).await.ok(),
                None => None,
            };
            let rec = match (newest, current) {
                // The dead container stays current: the restart policy decides on it
                // as on any exited container.
                (Some(n), Some(current)) if !is_init => Rec {
                    id: Some(n.id.clone()),
                    current: Some(current),
                    previous,
                    restart_count,
                    ..Default::default()
                },
                (_, current) => Rec {
                    previous: current.or(previous),
                    restart_count,
                    ran_before: true,
                    ..Default::default()
                },
            };
            self.containers.insert(c.name.clone(), rec);
        }
        tracing::info!(
            pod = ?pod.metadata.name,
            dead = ?dead_id,
            attempt = self.sandbox_attempt,
            "the pod's sandbox died; re-creating it"
        );
    }
}
