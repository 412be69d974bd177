//! The controller manager: the control loops that turn desired state into actual
//! state (upstream's kube-controller-manager). Every controller talks to the API
//! server only through the API, with kube-rs watches and a work queue, so it runs the
//! same in-process or against a remote server.

pub mod clusterrole_aggregation;
pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod expectations;
pub mod garbagecollector;
pub mod job;
pub mod leader;
pub mod manager;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod podgc;
pub mod pods;
pub mod podutil;
pub mod refmanager;
pub mod replicaset;
pub mod runtime;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;

use std::time::Duration;

pub use manager::{HealthReport, run, start};

/// Settings shared by the controllers; every timeout is a flag so tests can use seconds.
#[derive(Clone, Debug)]
pub struct Options {
    /// Identity of this controller manager in leases and events.
    pub identity: String,
    /// The pod network, split into per-node podCIDRs by node IPAM.
    pub cluster_cidr: String,
    /// Size of each node's podCIDR.
    pub node_cidr_mask_size: u8,
    /// A node whose lease is older than this is NotReady/Unknown.
    pub node_monitor_grace_period: Duration,
    /// How often node health is checked.
    pub node_monitor_period: Duration,
    /// Terminated pods kept before pod GC removes them.
    pub terminated_pod_gc_threshold: usize,
    /// The controllers to run, as upstream's `--controllers`: names, `*` for all,
    /// `-name` to leave one out (see [`manager::CONTROLLERS`]).
    pub controllers: Vec<String>,
    /// Objects each controller syncs at once (upstream's `--concurrent-*-syncs`).
    pub concurrent_syncs: usize,
    /// The cluster CA published into every namespace as `kube-root-ca.crt`.
    pub root_ca_pem: Option<String>,
    /// How often the garbage collector rediscovers resource types (custom resources
    /// join then); upstream's 30 s.
    pub discovery_resync_period: Duration,
    /// Addresses for `type: LoadBalancer` Services, one each; empty: the nodes'.
    pub servicelb_pool: servicelb::AddressPool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            identity: "k8rs-controller-manager".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            terminated_pod_gc_threshold: 12500,
            controllers: vec!["*".into()],
            concurrent_syncs: 5,
            root_ca_pem: None,
            discovery_resync_period: Duration::from_secs(30),
            servicelb_pool: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
