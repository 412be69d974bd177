//! `k8rs hollow-nodes`: simulated nodes against any k8rs (or Kubernetes) API server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct HollowArgs {
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// The kubeconfig of the cluster (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Node names are `<prefix>-<index>`.
    #[arg(long, default_value = "hollow-node")]
    pub prefix: String,
    /// CPU of each node.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Memory of each node.
    #[arg(long, default_value = "16Gi")]
    pub memory: String,
    /// Pods each node takes.
    #[arg(long, default_value = "110")]
    pub max_pods: String,
    /// Seconds between Lease renewals of each node.
    #[arg(long, default_value_t = 10)]
    pub lease_interval: u64,
    /// Seconds a run-to-completion pod "runs" before it succeeds.
    #[arg(long, default_value_t = 1.0)]
    pub job_runtime: f64,
    /// Extra label for every node (key=value), repeatable.
    #[arg(long = "node-label")]
    pub labels: Vec<String>,
}

pub async fn run(args: HollowArgs) -> Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read --kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("bad --kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found: pass --kubeconfig")?,
    };
    let client = kube::Client::try_from(config).context("cannot build an API client")?;
    let labels = args
        .labels
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--node-label {l}: expected key=value"))
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = hollow::Options {
        count: args.count,
        prefix: args.prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.max_pods,
        lease_interval: Duration::from_secs(args.lease_interval.max(1)),
        job_runtime: Duration::from_secs_f64(args.job_runtime.max(0.0)),
        labels,
        ..Default::default()
    };
    tracing::info!(count = opts.count, "starting hollow nodes");
    tokio::select! {
        r = hollow::run(client, opts) => r.context("hollow nodes failed"),
        _ = crate::supervise::shutdown_signal() => Ok(()),
    }
}
