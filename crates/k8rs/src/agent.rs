//! The node agent of `k8rs server`: a containerd of its own, the builtin images, and
//! the kubelet talking to the API server in-process.
//!
//! Order matters: the Node is registered first so node IPAM can give it a podCIDR,
//! the CNI config is written from that podCIDR, and only then does containerd start,
//! since it loads CNI configs at startup.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use apiserver::auth::UserInfo;
use apiserver::server::Router;
use clap::Args;
use cri::containerd::{Config as ContainerdConfig, Containerd};

/// Flags of the node agent.
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The Linux bridge of the pod network (at most 15 characters).
    #[arg(long, default_value = "cni0")]
    pub cni_bridge: String,
}

/// What the server tells its agent about the node.
pub struct NodeParams {
    pub data_dir: PathBuf,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub cluster_dns: IpAddr,
    pub args: AgentArgs,
}

/// How long the agent waits for the controller manager's node IPAM.
const POD_CIDR_WAIT: Duration = Duration::from_secs(120);

/// Starts the agent of a server (a control-plane node) in the background; failures
/// are logged, the control plane keeps running.
pub fn start_in_server(router: Router, params: NodeParams) {
    let user = UserInfo::new(
        format!("system:node:{}", params.node_name),
        vec!["system:nodes".into()],
    );
    let client = crate::inprocess::client(router, user);
    tokio::spawn(async move {
        if let Err(e) = run(client, params, true).await {
            tracing::error!(error = format!("{e:#}"), "the node agent stopped");
        }
    });
}

async fn run(client: kube::Client, p: NodeParams, control_plane: bool) -> Result<()> {
    let dir = p.data_dir.join("agent");
    let mut config = kubelet::Config::new(&p.node_name, p.node_ip, &dir);
    config.cluster_dns = Some(p.cluster_dns);
    if control_plane {
        config.node_labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            "true".into(),
        );
    }
    let mut kubelet = kubelet::Kubelet::new(client, config);
    kubelet.register().await.context("registering the node")?;
    let subnet = kubelet.wait_pod_cidr(POD_CIDR_WAIT).await?;
    let cni_dir = dir.join("etc/cni/net.d");
    let network = kubelet::cni::Network {
        bridge: p.args.cni_bridge.clone(),
        subnet,
        ipam_dir: dir.join("cni/networks"),
    };
    kubelet::cni::write_config(&cni_dir, &network)?;

    let containerd = Containerd::start(ContainerdConfig::new(dir.join("containerd"), &cni_dir))
        .await
        .context("starting containerd")?;
    let cri = containerd.client().clone();
    cri::images::install_builtin(&cri, &dir.join("images"))
        .await
        .context("importing the builtin images")?;
    tracing::info!(%subnet, bridge = %network.bridge, "node runtime ready");
    let runtime = kubelet::Runtime {
        runtime: Arc::new(cri.clone()),
        images: Arc::new(cri),
    };
    let result = kubelet.run(runtime).await;
    // containerd lives as long as the kubelet (dropping it stops containerd).
    drop(containerd);
    Ok(result?)
}
