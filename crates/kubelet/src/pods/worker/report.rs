//! Status reporting: the pod's status computed from what the worker knows, patched
//! through pods/status only when it changed.

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::super::status::{self, ContainerView};
use super::{Worker, exited};

impl Worker {
    pub(super) async fn report(&mut self, pod: &Pod) -> crate::Result<()> {
        let spec = pod.spec.as_ref();
        let creating = self
            .sandbox_error
            .as_ref()
            .map(|_| ("ContainerCreating", ""));
        let policy = spec
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        let init: &[Container] = spec
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default();
        let incomplete: Vec<&str> = init
            .iter()
            .filter(|c| !self.succeeded(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        let init_failed = policy == "Never"
            && init.iter().any(|c| {
                let rec = self.containers.get(&c.name);
                rec.and_then(|r| r.current.as_ref())
                    .is_some_and(|s| exited(s) && s.exit_code != 0)
            });
        let initializing = (!incomplete.is_empty()).then_some(("PodInitializing", ""));
        let view = |c: &Container, default: Option<(&'static str, &'static str)>| {
            let rec = self.containers.get(&c.name);
            status::container_status(&ContainerView {
                name: &c.name,
                spec_image: c.image.as_deref().unwrap_or_default(),
                waiting: rec
                    .and_then(|r| r.waiting.as_ref())
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .or(default),
                current: rec.and_then(|r| r.current.as_ref()),
                last_terminated: rec.and_then(|r| r.previous.as_ref()),
                restart_count: rec.map_or(0, |r| r.restart_count),
                started: rec
                    .and_then(|r| r.probes.as_ref())
                    .is_none_or(|p| p.started()),
                ready: rec
                    .and_then(|r| r.probes.as_ref())
                    .is_none_or(|p| p.ready()),
            })
        };
        let init_statuses: Vec<Value> = init
            .iter()
            .map(|c| {
                let mut v = view(c, creating);
                // An init container is ready once it succeeded, as upstream reports.
                v["ready"] = json!(self.succeeded(&c.name));
                v
            })
            .collect();
        let statuses: Vec<Value> = spec
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| view(c, creating.or(initializing)))
            .collect();
        let phase = if init_failed {
            "Failed"
        } else if !incomplete.is_empty() {
            "Pending"
        } else {
            status::phase(&statuses, policy)
        };
        let terminal = phase == "Succeeded" || phase == "Failed";
        if terminal {
            // Nothing will run in it again: release the IP, keep the containers' logs.
            self.stop_sandbox().await;
            self.finished = true;
        }
        let sandbox_ready = self.sandbox.as_ref().is_some_and(|s| !s.stopped);
        let ip = self
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .filter(|ip| !ip.is_empty());
        let host_ip = self.ctx.config.node_ip.to_string();
        let status = json!({
            "phase": phase,
            "conditions": self.conditions.build(pod, sandbox_ready, &statuses, &incomplete, phase),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": ip.as_ref().map(|ip| json!([{"ip": ip}])),
            "startTime": pod.status.as_ref().and_then(|s| s.start_time.clone()).map_or(json!(self.start_time), |t| json!(t)),
            "containerStatuses": statuses,
        });
        let mut status = status;
        if !init.is_empty() {
            status["initContainerStatuses"] = json!(init_statuses);
        }
        // A static pod's status goes to its mirror pod, once there is one.
        let target = if self.is_static {
            self.mirror.clone()
        } else {
            pod.metadata.uid.clone()
        };
        let Some(target) = target else {
            return Ok(());
        };
        if self
            .reported
            .as_ref()
            .is_some_and(|(uid, s)| *uid == target && *s == status)
        {
            return Ok(());
        }
        let m = &pod.metadata;
        let api: Api<Pod> = Api::namespaced(
            self.ctx.client.clone(),
            m.namespace.as_deref().unwrap_or("default"),
        );
        // The UID makes the patch conditional, as upstream's status manager does: a
        // newer pod (or mirror pod) of the same name is never given this status.
        let patch = json!({"metadata": {"uid": target}, "status": status});
        let name = m.name.as_deref().unwrap_or_default();
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::debug!(pod = name, phase, "pod status reported");
        self.reported = Some((target, status));
        Ok(())
    }
}
