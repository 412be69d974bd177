//! The node agent's kubelet: registers the Node, keeps its Lease and status fresh, and
//! runs the pods bound to it as real containers through CRI.
//!
//! Startup is staged because the pod network depends on the API: the Node must exist
//! before node IPAM gives it a podCIDR, the CNI config is written from that podCIDR,
//! and containerd must only start once that config exists (it reads CNI configs at
//! startup). So the caller composes: [`Kubelet::register`], [`Kubelet::wait_pod_cidr`],
//! [`cni::write_config`], start the runtime, then [`Kubelet::run`].

pub mod cni;
mod node;
mod pods;
pub mod server;
pub mod stats;
mod sysinfo;
mod time;
mod volumes;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cri::{ImageService, RuntimeService};

/// Errors of the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("container runtime: {0}")]
    Cri(#[from] cri::Error),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node} got no podCIDR within {waited:?}; is the node IPAM controller running?")]
    NoPodCidr { node: String, waited: Duration },
    #[error("kubelet API: {0}")]
    Server(String),
    #[error("node {node} has an invalid podCIDR {cidr:?}")]
    BadPodCidr { node: String, cidr: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a kubelet needs to know about its node.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_name: String,
    /// The node's InternalIP (also the pods' hostIP).
    pub node_ip: IpAddr,
    /// The agent's data dir: pod logs go under `pods/`, and its file system is the
    /// node's ephemeral-storage.
    pub data_dir: PathBuf,
    /// The cluster DNS service address pods with dnsPolicy ClusterFirst use.
    pub cluster_dns: Option<IpAddr>,
    pub cluster_domain: String,
    /// Labels the Node gets besides the well-known ones (e.g. the control-plane role).
    pub node_labels: BTreeMap<String, String>,
    /// How often the Lease is renewed (upstream: 10 s).
    pub lease_interval: Duration,
    /// The port of the kubelet API, published in the Node's daemonEndpoints.
    pub kubelet_port: u16,
    /// Where static pod manifests are read from (upstream's `--pod-manifest-path`; a
    /// directory, created if missing, or one file); `None` runs no static pods.
    pub pod_manifest_path: Option<PathBuf>,
}

impl Config {
    pub fn new(
        node_name: impl Into<String>,
        node_ip: IpAddr,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        let data_dir = data_dir.into();
        Config {
            node_name: node_name.into(),
            node_ip,
            pod_manifest_path: Some(data_dir.join("pod-manifests")),
            data_dir,
            cluster_dns: None,
            cluster_domain: "cluster.local".into(),
            node_labels: BTreeMap::new(),
            lease_interval: Duration::from_secs(10),
            kubelet_port: 10250,
        }
    }

    /// Where container logs go, as /var/log/pods on upstream nodes.
    pub fn pod_log_root(&self) -> PathBuf {
        self.data_dir.join("pods")
    }

    /// Where Localhost seccomp profiles are looked up (upstream: <root-dir>/seccomp).
    pub fn seccomp_root(&self) -> PathBuf {
        self.data_dir.join("seccomp")
    }
}

/// The runtime a kubelet drives.
#[derive(Clone)]
pub struct Runtime {
    pub runtime: Arc<dyn RuntimeService>,
    pub images: Arc<dyn ImageService>,
}

/// A kubelet for one node.
pub struct Kubelet {
    client: kube::Client,
    config: Arc<Config>,
    lease: Option<tokio::task::JoinHandle<()>>,
}

impl Kubelet {
    pub fn new(client: kube::Client, config: Config) -> Self {
        Kubelet {
            client,
            config: Arc::new(config),
            lease: None,
        }
    }

    /// Creates (or refreshes) the Node, not yet Ready, and starts renewing its Lease.
    pub async fn register(&mut self) -> Result<()> {
        node::register(&self.client, &self.config).await?;
        let (client, config) = (self.client.clone(), self.config.clone());
        self.lease = Some(tokio::spawn(node::renew_lease_forever(client, config)));
        Ok(())
    }

    /// What the kubelet knows about its node (the kubelet API serves from it too).
    pub fn config(&self) -> Arc<Config> {
        self.config.clone()
    }

    /// Waits until node IPAM gave the Node a podCIDR.
    pub async fn wait_pod_cidr(&self, timeout: Duration) -> Result<ipnet::IpNet> {
        node::wait_pod_cidr(&self.client, &self.config.node_name, timeout).await
    }

    /// Reports node status from the runtime and runs the node's pods; returns only on
    /// an error the kubelet cannot retry.
    /// Dropping the future (the agent shutting down) stops the status reports too, so
    /// none goes out about a runtime that is being stopped.
    pub async fn run(self, runtime: Runtime) -> Result<()> {
        let status = tokio::spawn(node::status_forever(
            self.client.clone(),
            self.config.clone(),
            runtime.clone(),
        ));
        let _status = AbortOnDrop(status);
        pods::run(self.client.clone(), self.config.clone(), runtime).await
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.abort();
        }
    }
}
