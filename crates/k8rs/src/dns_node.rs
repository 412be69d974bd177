//! The cluster DNS of `k8rs server` (the `dns` crate, in place of k3s' CoreDNS
//! deployment): a DNS server in this process, the `kube-dns` Service at
//! `--cluster-dns`, and an EndpointSlice pointing that Service at the server, so the
//! service proxy DNATs pods' queries to 10.43.0.10:53 to it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use apiserver::auth::UserInfo;
use apiserver::server::Router;
use clap::Args;

/// Flags of the built-in cluster DNS.
#[derive(Args, Debug, Clone)]
pub struct DnsArgs {
    /// Do not run the built-in cluster DNS (as k3s' `--disable=coredns`).
    #[arg(long)]
    pub disable_dns: bool,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Where the DNS server listens, UDP and TCP (default: the node's address, port
    /// 10053; port 0 picks a free one). Pods reach it through the kube-dns Service,
    /// whose EndpointSlice names the node's address and this port. Not 53, which a host
    /// resolver (systemd-resolved) may hold; not a wildcard address, since a UDP reply
    /// must come from the address the proxy DNATed the query to.
    #[arg(long)]
    pub dns_listen: Option<SocketAddr>,
    /// Where the DNS server's Prometheus `/metrics` are served (CoreDNS's port;
    /// default: the DNS server's address, port 9153, or a free port when the DNS port
    /// is 0). The kube-dns Service's `metrics` port leads here.
    #[arg(long)]
    pub dns_metrics_listen: Option<SocketAddr>,
}

/// The DNS server's port unless `--dns-listen` says otherwise.
const DEFAULT_PORT: u16 = 10053;
/// CoreDNS's metrics port.
const METRICS_PORT: u16 = 9153;

/// How often the Service and the EndpointSlice are checked (and repaired).
const ENSURE_INTERVAL: Duration = Duration::from_secs(60);

/// Starts the DNS server in the background unless disabled; failures are logged, the
/// rest of the server keeps running.
pub fn start(
    router: Router,
    args: &DnsArgs,
    node_name: &str,
    node_ip: IpAddr,
    cluster_dns: IpAddr,
) {
    if args.disable_dns {
        tracing::info!("cluster DNS disabled (--disable-dns)");
        return;
    }
    let client = crate::inprocess::client(
        router,
        UserInfo::new("system:k8rs-dns", vec!["system:masters".into()]),
    );
    let listen = args
        .dns_listen
        .unwrap_or_else(|| SocketAddr::new(node_ip, DEFAULT_PORT));
    let metrics_listen = args.dns_metrics_listen.unwrap_or_else(|| {
        let port = if listen.port() == 0 { 0 } else { METRICS_PORT };
        SocketAddr::new(listen.ip(), port)
    });
    let opts = dns::Options {
        domain: args.cluster_domain.clone(),
        listen,
        upstreams: dns::UpstreamSource::ResolvConf("/etc/resolv.conf".into()),
        metrics_listen: Some(metrics_listen),
    };
    let node_name = node_name.to_string();
    tokio::spawn(async move {
        let server = match dns::start(client.clone(), opts).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the cluster DNS cannot listen; pods cannot resolve names");
                return;
            }
        };
        let target = dns::kube_dns::Target {
            cluster_ip: cluster_dns,
            node_name,
            node_ip,
            port: server.addr.port(),
            metrics_port: server.metrics_addr.map(|a| a.port()),
        };
        loop {
            let wait = match dns::kube_dns::ensure(&client, &target).await {
                Ok(()) => ENSURE_INTERVAL,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write the kube-dns Service; retrying");
                    Duration::from_secs(2)
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
}
