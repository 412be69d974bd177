//! `k8rs killall`: removes what a stopped node left running on this machine, as
//! k3s-killall.sh does: the pods (through CRI, so CNI releases their addresses), the
//! shims, containerd, the mounts under the data dir, the pod bridge and the service
//! proxy's nftables tables. The data itself stays; `k8rs-uninstall.sh` removes it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct KillallArgs {
    /// The data dir of the server or agent to clean up after.
    #[arg(long, default_value = "/var/lib/k8rs")]
    pub data_dir: PathBuf,
    /// The pod network's bridge, as given to the server or agent.
    #[arg(long, default_value = "cni0")]
    pub cni_bridge: String,
    /// The service proxy's nftables table, as given to the server or agent.
    #[arg(long, default_value = proxy::rules::TABLE, hide = true)]
    pub kube_proxy_table: String,
}

pub async fn run(args: KillallArgs) -> Result<()> {
    if let Some(pid) = k8rs_running_on(&args.data_dir) {
        bail!(
            "k8rs (pid {pid}) is still running with --data-dir {}; stop it first",
            args.data_dir.display()
        );
    }
    let agent = args.data_dir.join("agent");
    let config =
        cri::containerd::Config::new(agent.join("containerd"), agent.join("etc/cni/net.d"));
    let done = cri::containerd::remove_all_pods(&config)
        .await
        .with_context(|| format!("cleaning up {}", config.state_dir.display()))?;
    if let Some(e) = &done.runtime_error {
        eprintln!("containerd could not be used for an orderly cleanup ({e}); forced it");
    }
    println!(
        "pods removed: {}, containers killed: {}, shims killed: {}",
        done.sandboxes, done.forced.containers, done.forced.shims
    );
    if args.data_dir.exists() {
        let mounts = cri::mounts::unmount_all_under(&args.data_dir)
            .with_context(|| format!("unmounting under {}", args.data_dir.display()))?;
        println!("unmounted: {}", done.forced.mounts + mounts);
    }
    remove_bridge(&args.cni_bridge)?;
    let tables = proxy::nft::cleanup(&proxy::nft::NftCommand, &args.kube_proxy_table)
        .context("removing the service proxy's nftables tables")?;
    println!("nftables tables removed: {}", tables.len());
    Ok(())
}

fn remove_bridge(name: &str) -> Result<()> {
    if !Path::new("/sys/class/net").join(name).exists() {
        return Ok(());
    }
    let out = Command::new("ip")
        .args(["link", "delete", name])
        .output()
        .context("running ip link delete (iproute2)")?;
    if !out.status.success() {
        bail!(
            "cannot delete the bridge {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("bridge {name} deleted");
    Ok(())
}

/// The pid of a `k8rs server` or `k8rs agent` using `data_dir`, if one runs: cleaning
/// up under a live node would fight its kubelet.
fn k8rs_running_on(data_dir: &Path) -> Option<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: i32 = p.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(p.path().join("cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (pid != me && runs_node_on(&args, data_dir)).then_some(pid)
    })
}

/// Whether a command line is `k8rs server|agent` with `data_dir` (given, or the default).
fn runs_node_on(args: &[String], data_dir: &Path) -> bool {
    let is_k8rs = args
        .first()
        .is_some_and(|a| a.rsplit('/').next() == Some("k8rs"));
    let is_node = matches!(args.get(1).map(String::as_str), Some("server" | "agent"));
    if !is_k8rs || !is_node {
        return false;
    }
    let mut used = PathBuf::from("/var/lib/k8rs");
    for (i, a) in args.iter().enumerate() {
        if let Some(v) = a.strip_prefix("--data-dir=") {
            used = PathBuf::from(v);
        } else if a == "--data-dir"
            && let Some(v) = args.get(i + 1)
        {
            used = PathBuf::from(v);
        }
    }
    same_dir(&used, data_dir)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn recognises_nodes_on_the_data_dir() {
        let d = Path::new("/var/lib/k8rs");
        assert!(runs_node_on(&args("/usr/local/bin/k8rs server"), d));
        assert!(runs_node_on(
            &args("k8rs agent --server x --data-dir /var/lib/k8rs"),
            d
        ));
        assert!(!runs_node_on(&args("k8rs server --data-dir=/tmp/other"), d));
        assert!(!runs_node_on(&args("k8rs killall"), d));
        assert!(!runs_node_on(&args("/usr/bin/k8rs-demo server"), d));
        assert!(runs_node_on(
            &args("/x/k8rs server --data-dir=/tmp/other"),
            Path::new("/tmp/other")
        ));
    }
}
