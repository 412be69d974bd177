//! The node's service proxy (upstream's kube-proxy in nftables mode, the `proxy`
//! crate), started by the agent: it waits for the node's podCIDR, then programs
//! ClusterIPs, NodePorts on every address of the node, and LoadBalancer ingress IPs
//! into nftables (a main table and its shards), replaced whole on start.
//! `--cleanup` removes those tables and exits, as `kube-proxy --cleanup`.
//!
//! Traffic counts as local to the pod network when it comes from the node's podCIDR
//! (upstream's `--detect-local-mode=NodeCIDR`): the only pods whose service traffic
//! this node's rules see are its own, and anything else is masqueraded.

use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::runtime::wait::await_condition;

/// Flags of the service proxy.
#[derive(Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Do not run the service proxy (as k3s' flag): Services are then not reachable
    /// through this node.
    #[arg(long)]
    pub disable_kube_proxy: bool,
    /// The nftables table the proxy owns (`ip <name>`); several servers on one
    /// machine (tests) each need their own.
    #[arg(long, default_value = proxy::rules::TABLE, hide = true)]
    pub kube_proxy_table: String,
    /// Remove the service proxy's nftables rules (its table and the table's shards)
    /// and exit, as `kube-proxy --cleanup`.
    #[arg(long)]
    pub cleanup: bool,
}

/// `--cleanup`: removes the proxy's tables and says which.
pub fn cleanup(args: &ProxyArgs) -> Result<()> {
    let removed = proxy::nft::cleanup(&proxy::nft::NftCommand, &args.kube_proxy_table)
        .context("removing the service proxy's nftables tables")?;
    if removed.is_empty() {
        println!(
            "no service proxy tables to remove (ip {}*)",
            args.kube_proxy_table
        );
    }
    for t in removed {
        println!("removed nftables table ip {t}");
    }
    Ok(())
}

/// Starts the proxy in the background unless disabled. Failures are logged; the rest
/// of the server keeps running.
pub fn start(client: kube::Client, node_name: &str, args: &ProxyArgs) {
    if args.disable_kube_proxy {
        tracing::info!("service proxy disabled (--disable-kube-proxy)");
        return;
    }
    if let Err(e) = nft_usable() {
        tracing::error!(
            error = format!("{e:#}"),
            "the service proxy cannot run: Services are not reachable through this node"
        );
        return;
    }
    let (node_name, table) = (node_name.to_string(), args.kube_proxy_table.clone());
    tokio::spawn(async move {
        let local = match node_cidr(&client, &node_name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "the service proxy cannot start");
                return;
            }
        };
        tracing::info!(%table, %local, "service proxy starting");
        let opts = proxy::Options {
            table,
            node_name,
            cluster_cidr: local,
            // Shortest time between two rule syncs (upstream's nftables `--min-sync-period`).
            min_sync_interval: proxy::DEFAULT_MIN_SYNC_INTERVAL,
            shards: proxy::DEFAULT_SHARDS,
        };
        proxy::run(client, opts, Arc::new(proxy::nft::NftCommand), None).await;
    });
}

/// Whether `nft` is installed and may change the ruleset (listing needs the same
/// capability).
fn nft_usable() -> Result<()> {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .context("cannot run nft (install the nftables package)")?;
    if !out.status.success() {
        bail!(
            "nft list tables failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The node's IPv4 podCIDR, once node IPAM has given it one.
async fn node_cidr(client: &kube::Client, node: &str) -> Result<Ipv4Net> {
    let nodes: Api<Node> = Api::all(client.clone());
    let has_cidr = |n: Option<&Node>| pod_cidr(n).is_some();
    let found = await_condition(nodes, node, has_cidr)
        .await
        .context("waiting for the node's podCIDR")?;
    let cidr = pod_cidr(found.as_ref()).context("the node has no podCIDR")?;
    match cidr.parse::<IpNet>() {
        Ok(IpNet::V4(net)) => Ok(net),
        _ => bail!("podCIDR {cidr} is not an IPv4 network (the proxy is IPv4 only)"),
    }
}

fn pod_cidr(node: Option<&Node>) -> Option<String> {
    node?
        .spec
        .as_ref()?
        .pod_cidr
        .clone()
        .filter(|c| !c.is_empty())
}
