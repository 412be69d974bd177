//! Forcible cleanup after a containerd of ours is gone: what its shims and runc left.
//!
//! Containers outlive containerd by design (each has its own shim), so a crashed test
//! or agent leaves pause and workload processes, shims, mounts and network namespaces.
//! Everything here is found through paths only our containerd used (its runc root and
//! socket), so another containerd on the node is never touched.

use std::path::Path;
use std::process::Command;

use super::Config;

/// What `force_cleanup` ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub containers: usize,
    pub shims: usize,
    pub mounts: usize,
}

/// Kills and deletes every container in our runc root, kills the shims serving our
/// socket, and unmounts everything under the state dir. Call after containerd stopped.
pub fn force_cleanup(config: &Config) -> std::io::Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    let runc_root = config.state_dir.join("state").join("runc");
    // The shim keeps one runc root per containerd namespace (`k8s.io` for CRI).
    for ns in std::fs::read_dir(&runc_root)
        .into_iter()
        .flatten()
        .flatten()
    {
        let root = ns.path();
        for container in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let id = container.file_name();
            let out = Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force"])
                .arg(&id)
                .output()?;
            if out.status.success() {
                cleaned.containers += 1;
            } else {
                let err = String::from_utf8_lossy(&out.stderr);
                tracing::warn!(id = ?id, error = %err.trim(), "runc delete --force failed");
            }
        }
    }
    cleaned.shims = kill_shims(&config.socket())?;
    remove_shim_sockets(&config.state_dir.join("state"));
    cleaned.mounts = crate::mounts::unmount_all_under(&config.state_dir)?;
    Ok(cleaned)
}

/// A killed shim leaves its socket in /run/containerd/s (a path containerd derives, not
/// one we configure); each task bundle records it in an `address` file.
fn remove_shim_sockets(state: &Path) {
    let tasks = state.join("io.containerd.runtime.v2.task");
    for ns in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        for bundle in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let Ok(address) = std::fs::read_to_string(bundle.path().join("address")) else {
                continue;
            };
            if let Some(path) = address.trim().strip_prefix("unix://") {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// SIGKILLs `containerd-shim*` processes whose `-address` is `socket`.
fn kill_shims(socket: &Path) -> std::io::Result<usize> {
    let socket = socket.as_os_str().as_encoded_bytes();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_shim = args.first().is_some_and(|a| {
            a.rsplit(|b| *b == b'/')
                .next()
                .is_some_and(|n| n.starts_with(b"containerd-shim"))
        });
        let ours = args
            .windows(2)
            .any(|w| w[0] == b"-address" && w[1] == socket);
        if is_shim
            && ours
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
            && rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
        {
            killed += 1;
        }
    }
    Ok(killed)
}
