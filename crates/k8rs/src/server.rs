//! `k8rs server`: the control plane in one process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apiserver::auth::{Authenticator, StaticTokens, UserInfo};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::component_args::ComponentArgs;
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
    /// Addresses for `type: LoadBalancer` Services, one each, as comma-separated CIDRs
    /// or ranges (192.0.2.0/28,198.51.100.10-198.51.100.20); they must be routed to
    /// the nodes. Default: each such Service gets the Ready nodes' addresses (k3s'
    /// ServiceLB).
    #[arg(long, value_parser = parse_pool)]
    pub servicelb_address_pool: Option<controllers::servicelb::AddressPool>,
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
    /// A kube-apiserver flag as `key=value` (repeatable), as k3s takes it. Supported:
    /// default-not-ready-toleration-seconds, default-unreachable-toleration-seconds.
    #[arg(long = "kube-apiserver-arg")]
    pub kube_apiserver_arg: Vec<String>,
    /// A kube-controller-manager flag as `key=value` (repeatable), as k3s takes it.
    /// Supported: node-monitor-grace-period, node-monitor-period, controllers,
    /// terminated-pod-gc-threshold, concurrent-syncs.
    #[arg(long = "kube-controller-manager-arg")]
    pub kube_controller_manager_arg: Vec<String>,
    /// Authorization modes, in order, as kube-apiserver's flag: Node, RBAC,
    /// AlwaysAllow (every request allowed, anonymous ones refused), AlwaysDeny.
    /// Members of system:masters are always allowed.
    #[arg(long, default_value = "Node,RBAC")]
    pub authorization_mode: String,
    #[command(flatten)]
    pub agent: crate::agent::AgentArgs,
    #[command(flatten)]
    pub dns: crate::dns_node::DnsArgs,
    /// Exit when standard input closes (for supervisors and tests that own the process).
    #[arg(long, hide = true)]
    pub exit_with_stdin: bool,
}

/// The first host address of a CIDR (10.43.0.1 for 10.43.0.0/16).
fn first_address(net: &IpNet) -> Result<IpAddr> {
    net.hosts()
        .next()
        .with_context(|| format!("--service-cidr {net} has no host addresses"))
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

/// The node's hostname, lower-cased as a node name must be.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_lowercase())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

async fn open_store(args: &ServerArgs) -> Result<Arc<dyn store::Store>> {
    if let Some(endpoints) = &args.datastore_endpoint {
        let config = store::etcd::EtcdConfig {
            endpoints: endpoints
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
            ca_file: args.datastore_cafile.clone(),
            cert_file: args.datastore_certfile.clone(),
            key_file: args.datastore_keyfile.clone(),
        };
        let etcd = store::etcd::EtcdStore::connect(config)
            .await
            .with_context(|| format!("cannot use the etcd datastore at {endpoints}"))?;
        // kube-apiserver's default --etcd-compaction-interval.
        etcd.spawn_compactor(Duration::from_secs(300));
        return Ok(Arc::new(etcd));
    }
    let path = args.data_dir.join("server/db/state.db");
    let sqlite = Arc::new(
        store::sqlite::SqliteStore::open(&path)
            .with_context(|| format!("cannot open the store at {}", path.display()))?,
    );
    sqlite.spawn_compactor(Duration::from_secs(300));
    Ok(sqlite)
}

pub async fn run(args: ServerArgs) -> Result<()> {
    if args.agent.proxy.cleanup {
        return crate::proxy_node::cleanup(&args.agent.proxy);
    }
    if !args.service_cidr.contains(&args.cluster_dns) {
        bail!(
            "--cluster-dns {} is outside --service-cidr {}",
            args.cluster_dns,
            args.service_cidr
        );
    }
    let kubernetes_ip = first_address(&args.service_cidr)?;
    let advertise = args.advertise_address.unwrap_or_else(primary_address);
    let node_name = args.node_name.clone().unwrap_or_else(hostname);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", args.data_dir.display()))?;

    // Every watch goes through one cache per resource type, as kube-apiserver's cacher.
    let store: Arc<dyn store::Store> = Arc::new(store::cache::WatchCache::new(
        open_store(&args).await?,
        store::cache::CacheConfig::default(),
    ));

    let mut ips = vec![advertise, kubernetes_ip];
    if !args.bind_address.is_unspecified() {
        ips.push(args.bind_address);
    }
    let mut dns = vec![hostname(), node_name.clone()];
    for san in &args.tls_san {
        match san.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(san.clone()),
        }
    }
    let tls_dir = args.data_dir.join("server/tls");
    let pki = pki::ClusterPki::ensure(
        &tls_dir,
        &pki::ServerPkiOptions {
            dns_names: dns,
            ips,
        },
    )
    .with_context(|| format!("cannot set up certificates in {}", tls_dir.display()))?;
    let token =
        pki::token::ensure_server_token(&args.data_dir.join("server/token"), &pki.ca.cert_pem)?;

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.https_listen_port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    args.bind_address, args.https_listen_port
                )
            })?;
    let port = listener.local_addr()?.port();

    let node_user = UserInfo::new("system:node:k8rs-agent", vec!["system:nodes".into()]);
    let secret = pki::token::parse(&token)?.secret;
    let join = Arc::new(crate::join::JoinState {
        pki: pki.clone(),
        secret: secret.clone(),
        cluster_dns: args.cluster_dns,
        cluster_domain: args.dns.cluster_domain.clone(),
    });
    let authenticator = Authenticator {
        tokens: vec![Arc::new(StaticTokens(vec![(secret, node_user)]))],
    };
    let toleration_defaults = apiserver_settings(&args.kube_apiserver_arg)?;
    let authorization_modes =
        apiserver::auth::AuthorizationMode::parse_list(&args.authorization_mode)
            .context("--authorization-mode")?;
    let controller_options = controller_settings(&args, &node_name, &pki.ca.cert_pem)?;
    let state = apiserver::build(apiserver::Options {
        store,
        authenticator,
        server_address: format!("{advertise}:{port}"),
        bookmark_interval: None,
        default_watch_timeout: Duration::from_secs(1800),
        service_cidr: args.service_cidr,
        node_port_range: 30000..=32767,
        toleration_defaults,
        service_account_tokens: Some(apiserver::auth::ServiceAccountTokens::new(
            pki.service_account_key.clone(),
        )),
        kubelet_client: Some(apiserver::kubelet::KubeletClient::new(
            &pki.ca.cert_pem,
            &pki.apiserver_kubelet_client,
        )?),
        authorization_modes,
    });
    apiserver::crd::load(&state)
        .await
        .map_err(|e| anyhow::anyhow!("loading CRDs: {e}"))?;
    let boot = apiserver::bootstrap::BootstrapConfig {
        kubernetes_service_ip: kubernetes_ip,
        advertise_address: advertise,
        secure_port: port,
    };
    apiserver::bootstrap::run(&state.registry, &boot)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;
    apiserver::auth::rbac::start(&state)
        .await
        .map_err(|e| anyhow::anyhow!("RBAC bootstrap policy: {e}"))?;
    state.health.set_bootstrapped();
    apiserver::crd::spawn_sync(state.clone());

    let router = apiserver::server::router(state.clone());
    let tls = pki::tls::server_config(&pki.serving, pki.client_ca_pem())?;
    let cert_user: apiserver::server::CertUser =
        Arc::new(|der| pki::tls::cert_user(der).map(|(name, groups)| UserInfo::new(name, groups)));
    tokio::spawn(apiserver::server::serve_tls(
        listener,
        tls,
        cert_user,
        router.clone().merge(crate::join::routes(join)),
    ));
    tracing::info!(%advertise, port, "API server listening");

    let server_url = format!("https://127.0.0.1:{port}");
    let kubeconfig = pki::kubeconfig::render("k8rs", &server_url, &pki.ca.cert_pem, &pki.admin);
    pki::kubeconfig::write(&args.write_kubeconfig, &kubeconfig).with_context(|| {
        format!(
            "cannot write --write-kubeconfig {}",
            args.write_kubeconfig.display()
        )
    })?;
    if !args.no_merge_kubeconfig
        && let Some(user_config) = pki::kubeconfig::user_config_path()
        && let Err(e) = pki::kubeconfig::merge(&user_config, &kubeconfig)
    {
        tracing::warn!(error = %e, "could not merge the k8rs context into ~/.kube/config");
    }

    crate::controlplane::start(
        router.clone(),
        state,
        crate::controlplane::ControlPlaneConfig {
            identity: controller_options.identity.clone(),
            controllers: controller_options,
        },
    );
    crate::dns_node::start(
        router.clone(),
        &args.dns,
        &node_name,
        advertise,
        args.cluster_dns,
    );
    crate::ingress_node::start_cluster(router.clone(), &args.agent.ingress);
    let agent = if args.disable_agent {
        None
    } else {
        let params = crate::agent::NodeParams {
            data_dir: args.data_dir.clone(),
            node_name: node_name.clone(),
            node_ip: advertise,
            cluster_dns: args.cluster_dns,
            cluster_domain: args.dns.cluster_domain.clone(),
            args: args.agent.clone(),
            kubelet_serving: pki.issue_kubelet_serving(
                &node_name,
                &[node_name.clone(), hostname()],
                &[advertise, IpAddr::from([127, 0, 0, 1])],
            )?,
            client_ca_pem: pki.client_ca_pem().to_string(),
        };
        Some(crate::agent::start_in_server(router, params))
    };
    tracing::info!(kubeconfig = %args.write_kubeconfig.display(), "k8rs is ready");

    if args.exit_with_stdin {
        tokio::select! {
            _ = crate::supervise::stdin_closed() => tracing::info!("standard input closed; stopping"),
            _ = crate::supervise::shutdown_signal() => tracing::info!("signal received; stopping"),
        }
    } else {
        crate::supervise::shutdown_signal().await;
        tracing::info!("signal received; stopping");
    }
    if let Some(agent) = agent {
        agent.shutdown().await;
    }
    Ok(())
}

/// The API server settings `--kube-apiserver-arg` may change.
fn apiserver_settings(items: &[String]) -> Result<apiserver::admission::TolerationDefaults> {
    let args = ComponentArgs::parse(
        "kube-apiserver-arg",
        items,
        &[
            "default-not-ready-toleration-seconds",
            "default-unreachable-toleration-seconds",
        ],
    )?;
    let mut t = apiserver::admission::TolerationDefaults::default();
    if let Some(v) = args.number("default-not-ready-toleration-seconds")? {
        t.not_ready = v;
    }
    if let Some(v) = args.number("default-unreachable-toleration-seconds")? {
        t.unreachable = v;
    }
    Ok(t)
}

/// The controller manager's settings, from the server's flags and
/// `--kube-controller-manager-arg`.
fn controller_settings(
    args: &ServerArgs,
    node_name: &str,
    root_ca_pem: &str,
) -> Result<controllers::Options> {
    let cm = ComponentArgs::parse(
        "kube-controller-manager-arg",
        &args.kube_controller_manager_arg,
        &[
            "node-monitor-grace-period",
            "node-monitor-period",
            "controllers",
            "terminated-pod-gc-threshold",
            "concurrent-syncs",
        ],
    )?;
    let mut o = controllers::Options {
        identity: format!("{node_name}_{}", std::process::id()),
        cluster_cidr: args.cluster_cidr.to_string(),
        servicelb_pool: args.servicelb_address_pool.clone().unwrap_or_default(),
        root_ca_pem: Some(root_ca_pem.to_string()),
        ..Default::default()
    };
    if let Some(d) = cm.duration("node-monitor-grace-period")? {
        o.node_monitor_grace_period = d;
    }
    if let Some(d) = cm.duration("node-monitor-period")? {
        o.node_monitor_period = d;
    }
    if let Some(list) = cm.get("controllers") {
        o.controllers = list.split(',').map(str::to_string).collect();
        if let Some(bad) = o.controllers.iter().find(|c| {
            let name = c.trim_start_matches('-');
            name != "*" && !controllers::manager::CONTROLLERS.contains(&name)
        }) {
            bail!(
                "--kube-controller-manager-arg controllers: unknown controller {bad:?}; known: {}",
                controllers::manager::CONTROLLERS.join(", ")
            );
        }
    }
    if let Some(n) = cm.number("terminated-pod-gc-threshold")? {
        o.terminated_pod_gc_threshold = n;
    }
    if let Some(n) = cm.number("concurrent-syncs")? {
        o.concurrent_syncs = n;
    }
    Ok(o)
}

fn parse_pool(s: &str) -> Result<controllers::servicelb::AddressPool, String> {
    s.parse()
        .map_err(|e: controllers::servicelb::PoolError| e.to_string())
}
