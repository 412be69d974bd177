//! Removing every pod a node's containerd runs, for `k8rs killall` and tests: the
//! orderly way first (CRI stop and remove, so the CNI plugins release addresses and
//! veths), then [`force_cleanup`] for whatever that could not reach.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

use super::{Cleaned, Config, Containerd, force_cleanup};
use crate::RuntimeService;

/// How long a containerd gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What [`remove_all_pods`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TornDown {
    /// Sandboxes stopped and removed through CRI.
    pub sandboxes: usize,
    /// Containerds of this config that were still running (orphans of a killed agent).
    pub stopped_containerds: usize,
    /// Why the orderly removal could not run, if it could not (the forced cleanup ran).
    pub runtime_error: Option<String>,
    pub forced: Cleaned,
}

/// Pids of running containerd processes started with `config`'s config file.
pub fn running_pids(config: &Config) -> Vec<Pid> {
    let want = format!("--config\0{}\0", config.config_path().display());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|p| {
            let pid: i32 = p.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(p.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmd).contains(&want).then_some(pid)
        })
        .filter_map(Pid::from_raw)
        .collect()
}

/// Stops containerds left running with `config` (SIGTERM, [`STOP_GRACE`], SIGKILL), so
/// a new one can take the socket and the metadata database. Returns how many.
pub async fn stop_stale(config: &Config) -> usize {
    let stale = running_pids(config);
    for &pid in &stale {
        tracing::warn!(
            pid = pid.as_raw_nonzero().get(),
            "stopping a containerd left by an earlier run"
        );
        let _ = kill_process(pid, Signal::TERM);
        let alive = || std::path::Path::new(&format!("/proc/{}", pid.as_raw_nonzero())).exists();
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if alive() {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
    stale.len()
}

/// Stops and removes every pod sandbox of `config`'s containerd (starting one for the
/// purpose if none runs), stops that containerd, then force-cleans what is left. Does
/// nothing when the state dir does not exist.
pub async fn remove_all_pods(config: &Config) -> std::io::Result<TornDown> {
    let mut done = TornDown::default();
    if !config.state_dir.exists() {
        return Ok(done);
    }
    // A fresh containerd rather than an orphan's: its state is known to be ours.
    done.stopped_containerds = stop_stale(config).await;
    match Containerd::start(config.clone()).await {
        Ok(containerd) => {
            let client = containerd.client();
            match client.list_pod_sandbox(None).await {
                Ok(pods) => {
                    for pod in pods {
                        // Stop runs the CNI DEL; remove forgets the sandbox.
                        let stopped = client.stop_pod_sandbox(&pod.id).await;
                        if let Err(e) = stopped.and(client.remove_pod_sandbox(&pod.id).await) {
                            tracing::warn!(id = %pod.id, error = %e, "removing a sandbox failed");
                        } else {
                            done.sandboxes += 1;
                        }
                    }
                }
                Err(e) => done.runtime_error = Some(format!("listing sandboxes: {e}")),
            }
            if let Err(e) = containerd.stop(STOP_GRACE).await {
                tracing::warn!(error = %e, "stopping containerd failed");
            }
        }
        Err(e) => done.runtime_error = Some(e.to_string()),
    }
    done.forced = force_cleanup(config)?;
    Ok(done)
}
