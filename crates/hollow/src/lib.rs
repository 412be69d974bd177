//! Hollow nodes: many simulated kubelets in one process, as upstream's kubemark does.
//! Each registers a Node, renews its Lease and reports status, and moves the pods bound
//! to it through Pending → Running (and to Succeeded/Failed for run-to-completion
//! pods after a configurable run time), without containers. One shared pod watch
//! serves every node, so thousands of nodes stay cheap.

mod node;
mod pods;

use std::sync::Arc;
use std::time::Duration;

pub use node::node_name;

/// How the simulated nodes behave.
#[derive(Clone, Debug)]
pub struct Options {
    pub count: usize,
    /// Node names are `<prefix>-<index>`.
    pub prefix: String,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    /// Lease renewal interval (the kubelet's is 10 s).
    pub lease_interval: Duration,
    /// Node status report interval (the kubelet's is 1 min when nothing changes).
    pub status_interval: Duration,
    /// How long a pod with restartPolicy Never/OnFailure "runs" before it succeeds.
    pub job_runtime: Duration,
    /// How long a pod takes to start.
    pub startup_delay: Duration,
    /// Extra labels for every node.
    pub labels: Vec<(String, String)>,
    /// How many API requests may be in flight at once.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            count: 1,
            prefix: "hollow-node".into(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            lease_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
            job_runtime: Duration::from_secs(1),
            startup_delay: Duration::from_millis(0),
            labels: Vec::new(),
            concurrency: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
}

/// Registers the nodes, then runs them until the future is dropped.
pub async fn run(client: kube::Client, opts: Options) -> Result<(), Error> {
    let opts = Arc::new(opts);
    let limiter = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    node::register_all(&client, &opts, &limiter).await?;
    tracing::info!(count = opts.count, "hollow nodes registered");
    let heartbeats = node::heartbeat_all(client.clone(), opts.clone(), limiter.clone());
    let pods = pods::run(client, opts, limiter);
    tokio::select! {
        r = heartbeats => r,
        r = pods => r,
    }
}
