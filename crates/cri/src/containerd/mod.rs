//! A containerd of our own, as k3s runs one: config under a state dir, its own socket,
//! started as a child process and stopped with us.

mod cleanup;
mod config;
mod teardown;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use cleanup::{Cleaned, force_cleanup};
pub use config::{Config, DEFAULT_CNI_BIN_DIR};
pub use teardown::{TornDown, remove_all_pods, running_pids, stop_stale};

use crate::{CriClient, RuntimeService};

/// Errors starting or stopping containerd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary the node needs is missing.
    #[error("{binary} not found on PATH; install the {package} package")]
    NotFound {
        binary: String,
        package: &'static str,
    },
    /// Unix socket paths are limited to 107 bytes.
    #[error("socket path {path} is {len} bytes; unix sockets allow at most 107")]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// containerd exited before its CRI service answered.
    #[error("{binary} exited during startup ({status}); log {log} ends with:\n{tail}")]
    Exited {
        binary: PathBuf,
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    /// containerd kept running but its CRI service never answered.
    #[error("containerd not ready within {timeout:?}: {last}; log {log} ends with:\n{tail}")]
    NotReady {
        timeout: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A running containerd. Killed (SIGKILL) on drop; `stop` ends it gracefully.
///
/// Containers outlive containerd (their shims are separate processes), as on any node:
/// stop and remove sandboxes first if they must go too.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    config: Config,
    binary: PathBuf,
    client: CriClient,
}

impl Containerd {
    /// Writes the config, starts containerd and returns once CRI `Version` answers.
    pub async fn start(config: Config) -> Result<Self> {
        let binary = find_binary(&config.binary, "containerd")?;
        // containerd only needs runc when the first sandbox starts; fail here, clearly.
        find_binary(Path::new("runc"), "runc")?;
        if !config.state_dir.is_absolute() {
            return Err(io_error(
                "state dir must be absolute",
                &config.state_dir,
                std::io::ErrorKind::InvalidInput.into(),
            ));
        }
        let socket = config.socket();
        let len = socket.as_os_str().len();
        if len > 107 {
            return Err(Error::SocketPathTooLong { path: socket, len });
        }
        for dir in [&config.state_dir, &config.cni_conf_dir] {
            fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        }
        let config_path = config.config_path();
        fs::write(&config_path, config.render())
            .map_err(|e| io_error("cannot write", &config_path, e))?;
        // A socket left by a killed containerd would make the readiness probe dial a corpse.
        let _ = fs::remove_file(&socket);

        let log_path = config.log_path();
        let log = File::create(&log_path).map_err(|e| io_error("cannot create", &log_path, e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| io_error("cannot open", &log_path, e))?;
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| io_error("cannot start", &binary, e))?;
        let started = Instant::now();
        tracing::info!(pid = child.id(), config = %config_path.display(), "containerd started");

        let mut child = Some(child);
        let client = wait_ready(&mut child, &config, &binary).await;
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                kill(&mut child);
                return Err(e);
            }
        };
        tracing::info!(elapsed = ?started.elapsed(), "containerd CRI ready");
        Ok(Containerd {
            child,
            config,
            binary,
            client,
        })
    }

    /// A CRI client on this containerd's socket.
    pub fn client(&self) -> &CriClient {
        &self.client
    }

    pub fn socket(&self) -> PathBuf {
        self.config.socket()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL if containerd has not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let pid = rustix::process::Pid::from_child(child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return Ok(Some(status));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(io_error("cannot wait for", &self.binary, e)),
            }
        }
        tracing::warn!(?grace, "containerd ignored SIGTERM; killing it");
        Ok(kill(&mut self.child))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Polls until CRI answers, the child exits, or the deadline passes. Polling is the
/// readiness signal containerd offers: the socket appears before CRI is initialised.
async fn wait_ready(
    child: &mut Option<Child>,
    config: &Config,
    binary: &Path,
) -> Result<CriClient> {
    let socket = config.socket();
    let deadline = Instant::now() + config.ready_timeout;
    let mut last = String::from("socket not created");
    loop {
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(Error::Exited {
                binary: binary.into(),
                status,
                log: config.log_path(),
                tail: log_tail(&config.log_path()),
            });
        }
        if socket.exists() {
            match CriClient::connect(&socket).await {
                Ok(client) => match client.version().await {
                    Ok(_) => return Ok(client),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                timeout: config.ready_timeout,
                last,
                log: config.log_path(),
                tail: log_tail(&config.log_path()),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kill(child: &mut Option<Child>) -> Option<ExitStatus> {
    let mut c = child.take()?;
    let _ = c.kill();
    c.wait().ok()
}

/// Resolves a binary name on PATH (paths are taken as given), so a missing package is
/// reported by name instead of as a bare ENOENT.
pub fn find_binary(binary: &Path, package: &'static str) -> Result<PathBuf> {
    let not_found = || Error::NotFound {
        binary: binary.display().to_string(),
        package,
    };
    if binary.components().count() > 1 {
        return if binary.is_file() {
            Ok(binary.into())
        } else {
            Err(not_found())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .ok_or_else(not_found)
}

/// The last lines of containerd's log, for error messages.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn io_error(what: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        what,
        path: path.into(),
        source,
    }
}
