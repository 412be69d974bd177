//! `k8rs server`: the control plane in one process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use ipnet::IpNet;

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Where all state lives: certificates, the SQLite store, tokens.
    #[arg(long, default_value = "/var/lib/k8rs")]
    pub data_dir: PathBuf,
    /// The API server's HTTPS port (0: pick a free one; the kubeconfig says which).
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The address advertised to clients and nodes (default: the node's primary address).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// etcd endpoints (http://host:2379, https://…, comma-separated). Default: SQLite in the data dir.
    #[arg(long)]
    pub datastore_endpoint: Option<String>,
    /// CA file for etcd's TLS.
    #[arg(long)]
    pub datastore_cafile: Option<PathBuf>,
    /// Client certificate for etcd's TLS.
    #[arg(long)]
    pub datastore_certfile: Option<PathBuf>,
    /// Client key for etcd's TLS.
    #[arg(long)]
    pub datastore_keyfile: Option<PathBuf>,
    /// Where to write the admin kubeconfig (also merged into ~/.kube/config as context `k8rs`).
    #[arg(long, default_value = "/etc/k8rs/k8rs.yaml")]
    pub write_kubeconfig: PathBuf,
    /// Pod network.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: IpNet,
    /// Service network; its first address is the `kubernetes` service.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: IpNet,
    /// The cluster DNS service address.
    #[arg(long, default_value = "10.43.0.10")]
    pub cluster_dns: IpAddr,
    /// Run the control plane only, no node.
    #[arg(long)]
    pub disable_agent: bool,
    /// This node's name (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Extra names or addresses for the serving certificate.
    #[arg(long = "tls-san", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Do not merge the kubeconfig into ~/.kube/config.
    #[arg(long)]
    pub no_merge_kubeconfig: bool,
    /// Exit when standard input closes (for supervisors and tests that own the process).
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
}

/// The first host address of a CIDR (10.43.0.1 for 10.43.0.0/16).
fn first_address(net: &IpNet) -> Result<IpAddr> {
    net.hosts().next().with_context(|| format!("--service-cidr {net} has no host addresses"))
}

/// The node's primary address: the source address of the default route.
fn primary_address() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("10.255.255.255:1")?;
        s.local_addr()
    });
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

pub async fn run(args: ServerArgs) -> Result<()> {
    if !args.service_cidr.contains(&args.cluster_dns) {
        bail!("--cluster-dns {} is outside --service-cidr {}", args.cluster_dns, args.service_cidr);
    }
    let kubernetes_ip = first_address(&args.service_cidr)?;
    let advertise = args.advertise_address.unwrap_or_else(primary_address);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", args.data_dir.display()))?;

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.https_listen_port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.bind_address, args.https_listen_port))?;
    let port = listener.local_addr()?.port();
    tracing::info!(%advertise, port, "starting k8rs server");

    let _ = (kubernetes_ip, Duration::from_secs(1));
    bail!("the server is not wired up yet")
}
