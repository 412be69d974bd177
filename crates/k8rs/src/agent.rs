//! The node agent of `k8rs server`: a containerd of its own, the builtin images, and
//! the kubelet talking to the API server in-process.
//!
//! Order matters: the Node is registered first so node IPAM can give it a podCIDR,
//! the CNI config is written from that podCIDR, and only then does containerd start,
//! since it loads CNI configs at startup.
//!
//! On shutdown containerd gets SIGTERM and [`CONTAINERD_STOP_GRACE`] to exit, so it
//! closes its metadata database cleanly; the pods' shims, and so the pods, keep
//! running (as k3s leaves them) for the next start to adopt. Only a panic or an
//! abandoned task drops containerd, which kills it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use apiserver::auth::UserInfo;
use apiserver::auth::rbac::bootstrap::roles::{INGRESS_GROUP, INGRESS_USER, PROXY_USER};
use apiserver::server::Router;
use clap::Args;
use cri::containerd::{Config as ContainerdConfig, Containerd};

/// Flags of the node agent.
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The Linux bridge of the pod network (at most 15 characters).
    #[arg(long, default_value = "cni0")]
    pub cni_bridge: String,
    /// The port of the kubelet API (logs, exec, port-forward); 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Static pod manifests (a directory, or one file) [default: <data-dir>/agent/pod-manifests].
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    #[command(flatten)]
    pub proxy: crate::proxy_node::ProxyArgs,
    #[command(flatten)]
    pub ingress: crate::ingress_node::IngressArgs,
}

/// The agent's API clients: the kubelet acts as the node, the service proxy as
/// upstream's kube-proxy (`system:kube-proxy`: it lists every Node, Service and
/// EndpointSlice, which a node may not), the Ingress controller as
/// `system:k8rs-ingress` (it reads Secrets a node may not).
#[derive(Clone)]
pub struct Clients {
    pub node: kube::Client,
    pub proxy: kube::Client,
    pub ingress: kube::Client,
    /// A server's own client, on a control-plane node: it gives the Node its
    /// control-plane role label, which NodeRestriction admission keeps kubelets from
    /// setting (as kubeadm and k3s label their servers' nodes themselves).
    pub control_plane: Option<kube::Client>,
}

/// What the server tells its agent about the node.
pub struct NodeParams {
    pub data_dir: PathBuf,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub cluster_dns: IpAddr,
    /// The cluster's DNS domain, for pods' resolv.conf search paths.
    pub cluster_domain: String,
    pub args: AgentArgs,
    /// The kubelet API's serving certificate, and the CA of its clients.
    pub kubelet_serving: pki::CertAndKey,
    pub client_ca_pem: String,
}

/// How long the agent waits for the controller manager's node IPAM.
const POD_CIDR_WAIT: Duration = Duration::from_secs(120);

/// How long containerd has to exit after SIGTERM before it is killed.
pub const CONTAINERD_STOP_GRACE: Duration = Duration::from_secs(10);

/// The agent a server runs in the background.
pub struct InServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl InServer {
    /// Stops the agent and waits for its containerd to exit.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let bound = CONTAINERD_STOP_GRACE + Duration::from_secs(5);
        if tokio::time::timeout(bound, self.task).await.is_err() {
            tracing::warn!(?bound, "the node agent did not stop in time");
        }
    }
}

/// Starts the agent of a server (a control-plane node) in the background; failures
/// are logged, the control plane keeps running.
pub fn start_in_server(router: Router, params: NodeParams) -> InServer {
    let user = UserInfo::new(
        format!("system:node:{}", params.node_name),
        vec!["system:nodes".into()],
    );
    let proxy = UserInfo::new(PROXY_USER, vec![]);
    let ingress = UserInfo::new(INGRESS_USER, vec![INGRESS_GROUP.into()]);
    let clients = Clients {
        node: crate::inprocess::client(router.clone(), user),
        proxy: crate::inprocess::client(router.clone(), proxy),
        control_plane: Some(crate::inprocess::client(
            router.clone(),
            UserInfo::new("system:k8rs-server", vec!["system:masters".into()]),
        )),
        ingress: crate::inprocess::client(router, ingress),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = run(clients, params, shutdown).await {
            tracing::error!(error = format!("{e:#}"), "the node agent stopped");
        }
    });
    InServer { stop, task }
}

/// Runs the agent until it fails or `shutdown` resolves; either way its containerd
/// is then stopped gracefully.
pub async fn run(
    clients: Clients,
    p: NodeParams,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut containerd = None;
    let result = tokio::select! {
        r = serve(clients, p, &mut containerd) => r,
        () = shutdown => Ok(()),
    };
    if let Some(c) = containerd.take() {
        stop_containerd(c).await;
    }
    result
}

/// Gives a server's Node its role label (as the server, not as the node).
async fn label_control_plane(admin: &kube::Client, node: &str) -> Result<()> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(admin.clone());
    let patch = serde_json::json!({"metadata": {"labels": {CONTROL_PLANE_LABEL: "true"}}});
    nodes
        .patch(node, &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .context("labelling the node as the control plane")?;
    Ok(())
}

const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

async fn stop_containerd(containerd: Containerd) {
    let started = Instant::now();
    match containerd.stop(CONTAINERD_STOP_GRACE).await {
        Ok(status) => {
            tracing::info!(?status, elapsed = ?started.elapsed(), "containerd stopped");
        }
        Err(e) => tracing::warn!(error = %e, "stopping containerd failed"),
    }
}

/// Everything the agent runs; `containerd` holds the runtime once it started, for
/// [`run`] to stop.
async fn serve(clients: Clients, p: NodeParams, containerd: &mut Option<Containerd>) -> Result<()> {
    let dir = p.data_dir.join("agent");
    let api = kubelet::server::KubeletApi::bind(kubelet::server::ServerConfig {
        addr: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), p.args.kubelet_port),
        serving: p.kubelet_serving.clone(),
        client_ca_pem: p.client_ca_pem.clone(),
    })
    .await?;
    let mut config = kubelet::Config::new(&p.node_name, p.node_ip, &dir);
    config.cluster_dns = Some(p.cluster_dns);
    config.cluster_domain = p.cluster_domain.clone();
    config.kubelet_port = api.port();
    if let Some(path) = &p.args.pod_manifest_path {
        config.pod_manifest_path = Some(path.clone());
    }
    let client = clients.node;
    crate::proxy_node::start(clients.proxy, &p.node_name, &p.args.proxy);
    crate::ingress_node::start_node(clients.ingress, &p.node_name, p.node_ip, &p.args.ingress);
    let mut kubelet = kubelet::Kubelet::new(client, config);
    kubelet.register().await.context("registering the node")?;
    if let Some(admin) = &clients.control_plane {
        label_control_plane(admin, &p.node_name).await?;
    }
    tracing::info!(node = %p.node_name, "node registered; waiting for its podCIDR");
    let subnet = kubelet.wait_pod_cidr(POD_CIDR_WAIT).await?;
    let cni_dir = dir.join("etc/cni/net.d");
    let network = kubelet::cni::Network {
        bridge: p.args.cni_bridge.clone(),
        subnet,
        ipam_dir: dir.join("cni/networks"),
    };
    kubelet::cni::write_config(&cni_dir, &network)?;

    let containerd_config = ContainerdConfig::new(dir.join("containerd"), &cni_dir);
    // A containerd left by a killed agent holds the metadata database's lock, so a new
    // one would never become ready; the pods' shims live on and the new one reloads
    // them. (Restarting rather than re-attaching keeps containerd our supervised child.)
    cri::containerd::stop_stale(&containerd_config).await;
    let started = Containerd::start(containerd_config)
        .await
        .context("starting containerd")?;
    let cri = containerd.insert(started).client().clone();
    cri::images::install_builtin(&cri, &dir.join("images"))
        .await
        .context("importing the builtin images")?;
    tracing::info!(%subnet, bridge = %network.bridge, "node runtime ready");
    let runtime = kubelet::Runtime {
        runtime: Arc::new(cri.clone()),
        images: Arc::new(cri),
    };
    tokio::spawn(api.serve(runtime.clone(), kubelet.config()));
    Ok(kubelet.run(runtime).await?)
}
