//! The `k8rs` binary: parses flags and composes the component crates.

mod agent;
mod agent_cmd;
mod component_args;
mod controlplane;
mod dns_node;
mod hollow_nodes;
mod image_cmd;
mod ingress_node;
mod inprocess;
mod join;
mod killall_cmd;
mod kubeconfig_cmd;
mod proxy_node;
mod server;
mod supervise;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// glibc's malloc spent a third of the API server's CPU time on a create-and-bind
/// workload (its arenas contend and consolidate); mimalloc made it 1.5x faster.
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

#[derive(Parser)]
#[command(name = "k8rs", version, about = "Kubernetes in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (and, unless --disable-agent, a node).
    Server(Box<server::ServerArgs>),
    /// Run a node that joins a server (`--server URL --token TOKEN`).
    Agent(Box<agent_cmd::AgentCmdArgs>),
    /// Run simulated nodes (no containers) against a cluster, for tests and scale experiments.
    HollowNodes(hollow_nodes::HollowArgs),
    /// The node's images: `import FILE...` (OCI or docker-archive tarballs), `ls`.
    Image(image_cmd::ImageArgs),
    /// Stop and remove what a stopped node left running (pods, containerd, mounts, the
    /// pod bridge, service proxy rules); the data dir is kept.
    Killall(killall_cmd::KillallArgs),
    /// Write a kubeconfig for a user (and groups) with a client certificate signed by
    /// the cluster CA; grant it rights with RBAC bindings.
    Kubeconfig(kubeconfig_cmd::KubeconfigArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(*args).await,
            Command::Agent(args) => agent_cmd::run(*args).await,
            Command::HollowNodes(args) => hollow_nodes::run(args).await,
            Command::Image(args) => image_cmd::run(args).await,
            Command::Killall(args) => killall_cmd::run(args).await,
            Command::Kubeconfig(args) => kubeconfig_cmd::run(args),
        }
    })
}
