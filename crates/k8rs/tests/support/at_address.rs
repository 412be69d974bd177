//! Servers whose node has a real address of this machine (NodePorts and LoadBalancer
//! IPs need one: the node's address is where they answer), and removing what a
//! server's agent started once it is killed.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
    let want = format!("--config\0{}\0", config.config_path().display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(p.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains(&want).then_some(pid)
    })
}

/// After the server of `data_dir` was killed: removes every sandbox its agent left
/// through CRI (so their CNI teardown runs), stops its containerd, then force-cleans
/// what is left. Does not remove the bridge.
pub fn cleanup_agent(data_dir: &Path) {
    use cri::RuntimeService;
    use cri::containerd::{Config, Containerd, force_cleanup};
    let agent = data_dir.join("agent");
    let config = Config::new(agent.join("containerd"), agent.join("etc/cni/net.d"));
    if !config.state_dir.exists() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let restarted = match containerd_pid(&config) {
            Some(_) => None,
            None => match Containerd::start(config.clone()).await {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("cannot restart containerd for cleanup: {e}");
                    return;
                }
            },
        };
        if let Ok(client) = cri::CriClient::connect(config.socket()).await {
            for pod in client.list_pod_sandbox(None).await.unwrap_or_default() {
                let _ = client.stop_pod_sandbox(&pod.id).await;
                let _ = client.remove_pod_sandbox(&pod.id).await;
            }
        }
        if let Some(c) = restarted {
            let _ = c.stop(Duration::from_secs(5)).await;
        }
    });
    if let Some(pid) = containerd_pid(&config) {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while containerd_pid(&config).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if containerd_pid(&config).is_some() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    match force_cleanup(&config) {
        Ok(c) if c == Default::default() => {}
        Ok(c) => eprintln!("forced cleanup: {c:?}"),
        Err(e) => eprintln!("forced cleanup failed: {e}"),
    }
}
