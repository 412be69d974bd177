//! One pod's worker: runs its sandbox and containers through CRI, restarts them per
//! restartPolicy with CrashLoopBackOff, reports status, and on deletion stops
//! everything within the grace period and makes the final delete.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cri::v1::{ContainerState, ContainerStatus, PodSandboxConfig};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;
use tokio::sync::watch;

mod hooks;
mod recreate;
mod report;
mod resume;
mod terminate;

use super::adopt::Found;
use super::events::Recorder;
use super::probe::Probes;
use super::spec::{self, ContainerInput};
use super::status::Conditions;
use super::{Ctx, Desired, Source};
use crate::volumes::PodVolumes;

/// How often container states are re-read (upstream's PLEG relists every second).
const RESYNC: Duration = Duration::from_secs(1);
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

struct Sandbox {
    id: String,
    config: PodSandboxConfig,
    ip: String,
    stopped: bool,
}

#[derive(Default)]
struct Rec {
    id: Option<String>,
    current: Option<ContainerStatus>,
    previous: Option<ContainerStatus>,
    restart_count: u32,
    /// A container of this name ran before and is gone (with a sandbox that died, or
    /// removed behind our back): the next one is a restart, attempt restart_count + 1.
    ran_before: bool,
    waiting: Option<(String, String)>,
    /// The delay before the next restart; None until the first restart.
    backoff: Option<Duration>,
    /// When the current container was first seen exited.
    exited_at: Option<Instant>,
    /// The running container's probes; `None` when it has none or is not running.
    probes: Option<Probes>,
}

struct Worker {
    ctx: Arc<Ctx>,
    /// A static pod: its status goes to its mirror pod, and it has no API object to
    /// delete at the end.
    is_static: bool,
    /// The static pod's mirror pod UID, once there is one.
    mirror: Option<String>,
    sandbox: Option<Sandbox>,
    /// The CRI attempt of the next sandbox: one more than a dead one's, as upstream
    /// (the runtime refuses a second sandbox of the same name and attempt).
    sandbox_attempt: u32,
    /// Sandboxes an earlier kubelet left for this pod that it did not adopt; removed
    /// with the pod (a finished pod's keep its containers' logs until then).
    stale: Vec<String>,
    sandbox_error: Option<String>,
    /// When the sandbox's state was last asked (see `check_sandbox`).
    sandbox_checked: Option<Instant>,
    containers: HashMap<String, Rec>,
    conditions: Conditions,
    start_time: String,
    /// The last status patched, and the UID of the object it went to.
    reported: Option<(String, Value)>,
    finished: bool,
    volumes: PodVolumes,
    /// The pod's uid, for cleaning up after it once it is gone.
    uid: Option<String>,
    /// Events about the pod's containers, made on first use.
    events: Option<Recorder>,
}

pub async fn run(ctx: Arc<Ctx>, mut rx: watch::Receiver<Option<Desired>>, found: Option<Found>) {
    let Some(first) = rx.borrow().clone() else {
        return;
    };
    let is_static = matches!(first.source, Source::File { .. });
    let mut w = Worker {
        ctx,
        is_static,
        mirror: None,
        sandbox: None,
        sandbox_attempt: 0,
        stale: Vec::new(),
        sandbox_error: None,
        sandbox_checked: None,
        containers: HashMap::new(),
        conditions: Conditions::new(&first.pod),
        start_time: crate::time::now(),
        reported: None,
        finished: false,
        volumes: PodVolumes::default(),
        uid: first.pod.metadata.uid.clone(),
        events: None,
    };
    // With nothing in the runtime, the API's status still tells whether the pod's
    // containers ran before (the runtime's state was lost): their counts carry on.
    let mut found = found.or_else(|| recreate::ran_before(&first.pod).then(Found::default));
    loop {
        let desired = rx.borrow_and_update().clone();
        let Some(Desired { pod, source }) = desired else {
            // Gone from the API without our final delete (a forced delete): stop at once.
            w.kill(None, Duration::ZERO).await;
            return;
        };
        if let Source::File { mirror } = source {
            w.mirror = mirror;
        }
        if let Some(found) = found.take() {
            w.adopt(&pod, found).await;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            if w.terminate(&pod).await {
                return;
            }
        } else if let Err(e) = w.sync(&pod).await {
            tracing::warn!(pod = ?pod.metadata.name, error = %e, "pod sync failed");
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

fn exited(s: &ContainerStatus) -> bool {
    s.state == ContainerState::ContainerExited as i32
}

impl Worker {
    async fn sync(&mut self, pod: &Pod) -> crate::Result<()> {
        if self.finished {
            return Ok(());
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) && self.sandbox.is_none() {
            // Finished before this kubelet saw it: never run a terminal pod again.
            self.finished = true;
            return Ok(());
        }
        // Volumes come first: a pod whose volumes cannot be set up waits in
        // ContainerCreating. Once running, a failed refresh keeps the old contents.
        let volumes = self
            .volumes
            .sync(&self.ctx.client, &self.ctx.config, pod)
            .await;
        self.check_sandbox(pod).await;
        if self.sandbox.is_none() {
            if let Err(e) = volumes {
                self.sandbox_error = Some(e.to_string());
            } else if self.volumes.ready() {
                self.run_sandbox(pod).await;
            }
        }
        if self.sandbox.is_some() {
            let spec = pod.spec.clone().unwrap_or_default();
            let policy = spec.restart_policy.as_deref().unwrap_or("Always");
            // Init containers run one at a time, each to success, before the others.
            let init_policy = if policy == "Never" {
                "Never"
            } else {
                "OnFailure"
            };
            let mut initialized = true;
            for c in spec.init_containers.iter().flatten() {
                if !self.succeeded(&c.name) {
                    self.sync_container(pod, c, init_policy).await;
                }
                if !self.succeeded(&c.name) {
                    initialized = false;
                    break;
                }
            }
            if initialized {
                for c in &spec.containers {
                    self.sync_container(pod, c, policy).await;
                }
            }
        }
        self.report(pod).await
    }

    /// Whether the container's current run exited 0 (an init container is done).
    fn succeeded(&self, name: &str) -> bool {
        let rec = self.containers.get(name);
        rec.and_then(|r| r.current.as_ref())
            .is_some_and(|s| exited(s) && s.exit_code == 0)
    }

    async fn run_sandbox(&mut self, pod: &Pod) {
        let mut config = spec::sandbox_config(&self.ctx.config, pod);
        if let Some(m) = config.metadata.as_mut() {
            m.attempt = self.sandbox_attempt;
        }
        if let Err(e) = std::fs::create_dir_all(&config.log_directory) {
            self.sandbox_error = Some(format!("cannot create {}: {e}", config.log_directory));
            return;
        }
        let rt = &self.ctx.runtime.runtime;
        let started = Instant::now();
        let id = match rt.run_pod_sandbox(config.clone(), "").await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(pod = ?pod.metadata.name, error = %e, "FailedCreatePodSandBox");
                self.sandbox_error = Some(e.to_string());
                return;
            }
        };
        let ip = match rt.pod_sandbox_status(&id).await {
            Ok(s) => s
                .status
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "sandbox status failed");
                String::new()
            }
        };
        tracing::info!(pod = ?pod.metadata.name, %ip, elapsed = ?started.elapsed(), "sandbox running");
        self.sandbox_error = None;
        self.sandbox = Some(Sandbox {
            id,
            config,
            ip,
            stopped: false,
        });
    }

    async fn sync_container(&mut self, pod: &Pod, c: &Container, policy: &str) {
        let rt = self.ctx.runtime.runtime.clone();
        let rec = self.containers.entry(c.name.clone()).or_default();
        let Some(id) = rec.id.clone() else {
            let attempt = if rec.ran_before {
                rec.restart_count + 1
            } else {
                0
            };
            self.start_container(pod, c, attempt).await;
            return;
        };
        match rt.container_status(&id).await {
            Ok(s) => rec.current = Some(s),
            Err(e) if e.is_not_found() => {
                // Removed behind our back: run it again.
                rec.id = None;
                rec.current = None;
                rec.ran_before = true;
                return;
            }
            Err(e) => {
                tracing::warn!(container = %c.name, error = %e, "container status failed");
                return;
            }
        }
        let running = |s: &ContainerStatus| s.state == ContainerState::ContainerRunning as i32;
        let failed = rec.probes.as_ref().and_then(|p| p.failed());
        if let Some((kind, _)) = failed
            && rec.current.as_ref().is_some_and(running)
        {
            self.kill_unhealthy(pod, c, &id, kind, policy).await;
        }
        let rec = self.containers.entry(c.name.clone()).or_default();
        if rec.current.as_ref().is_some_and(exited) {
            rec.probes = None;
        }
        let Some(cur) = rec.current.as_ref().filter(|s| exited(s)) else {
            return;
        };
        let restart = match policy {
            "Never" => false,
            "OnFailure" => cur.exit_code != 0,
            _ => true,
        };
        if !restart {
            return;
        }
        let exited_at = *rec.exited_at.get_or_insert_with(Instant::now);
        if let Some(delay) = rec.backoff
            && exited_at.elapsed() < delay
        {
            let m = pod.metadata.clone();
            let message = format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                delay.as_secs(),
                c.name,
                m.name.unwrap_or_default(),
                m.namespace.unwrap_or_default(),
                m.uid.unwrap_or_default()
            );
            rec.waiting = Some(("CrashLoopBackOff".into(), message));
            return;
        }
        rec.backoff = Some(
            rec.backoff
                .map_or(BACKOFF_START, |d| (d * 2).min(BACKOFF_MAX)),
        );
        let attempt = rec.restart_count + 1;
        self.start_container(pod, c, attempt).await;
    }

    async fn start_container(&mut self, pod: &Pod, c: &Container, attempt: u32) {
        let prev_reason = self
            .containers
            .get(&c.name)
            .and_then(|r| r.waiting.as_ref())
            .map(|w| w.0.clone());
        let result = self
            .create_and_start(pod, c, attempt, prev_reason.as_deref())
            .await;
        let rt = self.ctx.runtime.runtime.clone();
        // The postStart hook and probes; a failed hook killed the container.
        let result = match result {
            Ok((id, status)) => match self.after_start(pod, c, &id).await {
                Ok(probes) => Ok((id, status, probes)),
                Err(()) => Ok((id.clone(), rt.container_status(&id).await.ok(), None)),
            },
            Err(waiting) => Err(waiting),
        };
        let rec = self.containers.entry(c.name.clone()).or_default();
        match result {
            Ok((id, status, probes)) => {
                if attempt > 0 {
                    rec.restart_count = attempt;
                }
                // Keep one dead container (its log serves --previous); remove older ones.
                if let Some(cur) = rec.current.take()
                    && let Some(old) = rec.previous.replace(cur)
                {
                    let _ = rt.remove_container(&old.id).await;
                }
                rec.current = status;
                rec.ran_before = false;
                rec.id = Some(id);
                rec.waiting = None;
                rec.exited_at = None;
                rec.probes = probes;
            }
            Err(waiting) => rec.waiting = Some(waiting),
        }
    }

    async fn create_and_start(
        &self,
        pod: &Pod,
        c: &Container,
        attempt: u32,
        prev_reason: Option<&str>,
    ) -> Result<(String, Option<ContainerStatus>), (String, String)> {
        let sandbox = self.sandbox.as_ref().expect("sandbox running");
        let image_ref =
            super::image::resolve(self.ctx.runtime.images.as_ref(), c, prev_reason).await?;
        let images = self.ctx.runtime.images.as_ref();
        super::security::verify_non_root(images, pod, c, &image_ref)
            .await
            .map_err(|m| ("CreateContainerConfigError".to_string(), m))?;
        let host_ip = self.ctx.config.node_ip.to_string();
        let seccomp_root = self.ctx.config.seccomp_root();
        let input = ContainerInput {
            pod,
            container: c,
            attempt,
            image_ref: &image_ref,
            pod_ip: &sandbox.ip,
            host_ip: &host_ip,
            volumes: self.volumes.mounted(),
            seccomp_root: &seccomp_root,
        };
        let config = spec::container_config(&self.ctx.client, input)
            .await
            .map_err(|e| ("CreateContainerConfigError".to_string(), e.0))?;
        let rt = &self.ctx.runtime.runtime;
        let id = rt
            .create_container(&sandbox.id, config, sandbox.config.clone())
            .await
            .map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        if let Err(e) = rt.start_container(&id).await {
            let _ = rt.remove_container(&id).await;
            return Err(("RunContainerError".into(), e.to_string()));
        }
        Ok((id.clone(), rt.container_status(&id).await.ok()))
    }

    async fn stop_sandbox(&mut self) {
        if let Some(s) = self.sandbox.as_mut().filter(|s| !s.stopped) {
            match self.ctx.runtime.runtime.stop_pod_sandbox(&s.id).await {
                Ok(()) => s.stopped = true,
                Err(e) => tracing::warn!(error = %e, "stopping the sandbox failed"),
            }
        }
    }
}
