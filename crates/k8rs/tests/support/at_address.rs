//! Servers whose node has a real address of this machine (NodePorts and LoadBalancer
//! IPs need one: the node's address is where they answer), and removing what a
//! server's agent started once it is killed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

use super::{Opts, Server};

/// This machine's primary IPv4 address (the source address of the default route, as
/// the server picks its own), or `None` when there is only loopback.
pub fn primary_ipv4() -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:1").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() && !ip.is_loopback() => Some(ip),
        _ => None,
    }
}

impl Server {
    /// A server with its agent whose node address is `node_ip`; the API server still
    /// listens on loopback only.
    pub fn start_with_agent_at(node_ip: IpAddr, opts: Opts) -> Server {
        Self::spawn_at(opts, true, node_ip)
    }
}

/// The pid of the containerd running with `config`'s config file (orphaned once the
/// server was killed).
pub fn containerd_pid(config: &cri::containerd::Config) -> Option<u32> {
    let pid = *cri::containerd::running_pids(config).first()?;
    Some(pid.as_raw_nonzero().get() as u32)
}

/// After the server or agent of `data_dir` was killed: `k8rs killall` removes its pods
/// (through CRI, so their CNI teardown runs), containerd, shims, mounts, the bridge and
/// the proxy's `table` (if the node ran one). Every real test's teardown runs it.
pub fn killall(data_dir: &Path, bridge: &str, table: Option<&str>) {
    // A table name no node used when the proxy was off: nothing to remove then.
    let table = table.map_or_else(|| format!("{bridge}-no-proxy"), str::to_string);
    let out = Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .arg("killall")
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--cni-bridge", bridge])
        .args(["--kube-proxy-table", &table])
        .output()
        .expect("run k8rs killall");
    if !out.status.success() {
        eprintln!(
            "k8rs killall failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
