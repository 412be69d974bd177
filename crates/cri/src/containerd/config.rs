//! The config.toml our own containerd runs with (containerd 1.6+, config version 2).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the CNI plugin binaries live on Debian (`containernetworking-plugins`).
pub const DEFAULT_CNI_BIN_DIR: &str = "/usr/lib/cni";

/// What the supervisor needs to know to run a containerd of its own.
#[derive(Clone, Debug)]
pub struct Config {
    /// Everything containerd writes goes under here: config, socket, root, state, log.
    /// Must be absolute.
    pub state_dir: PathBuf,
    /// CNI network configs (`*.conflist`); containerd watches this directory.
    pub cni_conf_dir: PathBuf,
    /// CNI plugin binaries.
    pub cni_bin_dir: PathBuf,
    /// The pause image every sandbox runs; it must already be in the `k8s.io` namespace,
    /// since nothing can be pulled here.
    pub sandbox_image: String,
    /// The containerd binary: a name looked up on PATH, or a path.
    pub binary: PathBuf,
    /// How long `start` waits for the CRI service to answer.
    pub ready_timeout: Duration,
}

impl Config {
    pub fn new(state_dir: impl Into<PathBuf>, cni_conf_dir: impl Into<PathBuf>) -> Self {
        Config {
            state_dir: state_dir.into(),
            cni_conf_dir: cni_conf_dir.into(),
            cni_bin_dir: DEFAULT_CNI_BIN_DIR.into(),
            sandbox_image: crate::images::PAUSE_IMAGE.into(),
            binary: "containerd".into(),
            ready_timeout: Duration::from_secs(20),
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.state_dir.join("config.toml")
    }

    /// containerd's gRPC socket, which also serves CRI.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.join("containerd.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.state_dir.join("containerd.log")
    }

    /// The config.toml text.
    pub fn render(&self) -> String {
        let dir = &self.state_dir;
        let q = |p: &Path| quote(&p.to_string_lossy());
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        format!(
            r#"# Written by k8rs; regenerated on every start.
version = 2
root = {root}
state = {state}
# Snapshotters that cannot work here only add noise to the log.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[plugins."io.containerd.internal.v1.opt"]
  path = {opt}

[{cri}]
  sandbox_image = {sandbox}
  # The default makes runc fail every sandbox with "failed to update
  # /proc/self/oom_score_adj: Permission denied" on these machines.
  restrict_oom_score_adj = true
  # Network namespaces under our state dir, not /var/run/netns: cleanup stays local.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  # runc's own state beside ours, so two containerds never share it.
  Root = {runc_root}

[{cri}.cni]
  bin_dir = {cni_bin}
  conf_dir = {cni_conf}
"#,
            root = q(&dir.join("root")),
            state = q(&dir.join("state")),
            socket = q(&self.socket()),
            ttrpc = q(&dir.join("containerd.sock.ttrpc")),
            opt = q(&dir.join("opt")),
            sandbox = quote(&self.sandbox_image),
            runc_root = q(&dir.join("state").join("runc")),
            cni_bin = q(&self.cni_bin_dir),
            cni_conf = q(&self.cni_conf_dir),
        )
    }
}

/// A TOML basic string: JSON's escapes are a subset of TOML's.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_paths_and_trap_settings() {
        let c = Config::new("/s/x", "/s/cni \"q\"");
        let text = c.render();
        assert!(
            text.contains("address = \"/s/x/containerd.sock\""),
            "{text}"
        );
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains("conf_dir = \"/s/cni \\\"q\\\"\""), "{text}");
        assert!(text.contains("sandbox_image = \"registry.k8s.io/pause:3.10\""));
    }
}
