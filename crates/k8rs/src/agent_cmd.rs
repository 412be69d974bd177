//! `k8rs agent --server URL --token TOKEN`: a node joining a cluster, as `k3s agent`.
//!
//! The agent fetches the cluster CA without trusting the server yet and checks it
//! against the token's hash; then, authenticated by the token's secret, it gets its
//! node client certificate (`system:node:<name>`), kubelet serving certificate and
//! the client certificates of the service proxy (`system:kube-proxy`) and the Ingress
//! controller (`system:k8rs-ingress`), and runs the same node agent as a server's, as
//! a remote API client.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::agent::{AgentArgs, Clients, NodeParams};
use crate::join::{NODE_CERTIFICATES, NodeCertificates, NodeRequest};

#[derive(Args, Debug)]
pub struct AgentCmdArgs {
    /// The server to join, e.g. https://10.0.0.1:6443.
    #[arg(long, env = "K8RS_URL", required_unless_present = "cleanup")]
    pub server: Option<String>,
    /// The server's join token (`<data-dir>/server/token` on the server).
    #[arg(
        long,
        env = "K8RS_TOKEN",
        hide_env_values = true,
        required_unless_present = "cleanup"
    )]
    pub token: Option<String>,
    #[arg(long, default_value = "/var/lib/k8rs")]
    pub data_dir: PathBuf,
    /// The node's name (default: the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The node's InternalIP (default: the local address towards the server).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    #[command(flatten)]
    pub agent: AgentArgs,
}

pub async fn run(args: AgentCmdArgs) -> Result<()> {
    if args.agent.proxy.cleanup {
        return crate::proxy_node::cleanup(&args.agent.proxy);
    }
    // clap requires both unless --cleanup.
    let (Some(server), Some(token)) = (&args.server, &args.token) else {
        bail!("--server and --token are required");
    };
    let token = pki::token::parse(token).context("invalid --token")?;
    let url: http::Uri = server
        .parse()
        .with_context(|| format!("invalid --server {server:?}"))?;
    let (Some("https"), Some(authority)) = (url.scheme_str(), url.authority().cloned()) else {
        bail!("--server {server:?} must be an https:// URL");
    };
    let server = server.trim_end_matches('/').to_string();

    let unverified = pki::tls::unverified_client_config();
    let (status, ca) = request(&authority, unverified, "GET", "/cacerts", None, "")
        .await
        .with_context(|| format!("cannot fetch the cluster CA from {server}"))?;
    if status != 200 {
        bail!("{server}/cacerts answered {status}");
    }
    let ca = String::from_utf8(ca.to_vec()).context("the server's CA is not text")?;
    if token.ca_hash.is_none() {
        tracing::warn!("the token has no CA hash: trusting the server's CA unchecked");
    }
    token
        .check_ca(&ca)
        .context("refusing to join: --token is not this server's")?;

    let node_name = args
        .node_name
        .clone()
        .unwrap_or_else(crate::server::hostname);
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => local_address_towards(&authority).await?,
    };
    let body = serde_json::to_vec(&NodeRequest {
        node_name: node_name.clone(),
        node_ip,
    })?;
    let trusted = pki::tls::client_config(&ca, None)?;
    let (status, reply) = request(
        &authority,
        trusted,
        "POST",
        NODE_CERTIFICATES,
        Some(&token.secret),
        &String::from_utf8_lossy(&body),
    )
    .await
    .with_context(|| format!("cannot get node certificates from {server}"))?;
    if status != 200 {
        bail!(
            "{server} refused the node certificates ({status}): {}",
            String::from_utf8_lossy(&reply).trim()
        );
    }
    let certs: NodeCertificates =
        serde_json::from_slice(&reply).context("unexpected node certificate answer")?;
    let clients = Clients {
        node: api_client(&server, &ca, certs.client_cert, certs.client_key).await?,
        proxy: api_client(&server, &ca, certs.proxy_cert, certs.proxy_key).await?,
        ingress: api_client(&server, &ca, certs.ingress_cert, certs.ingress_key).await?,
        control_plane: None,
    };
    tracing::info!(%server, node = %node_name, %node_ip, "joined; starting the node agent");

    let params = NodeParams {
        data_dir: args.data_dir,
        node_name,
        node_ip,
        cluster_dns: certs.cluster_dns,
        cluster_domain: certs.cluster_domain,
        args: args.agent,
        kubelet_serving: pki::CertAndKey {
            cert_pem: certs.serving_cert,
            key_pem: certs.serving_key,
        },
        client_ca_pem: ca,
    };
    let shutdown = async {
        crate::supervise::shutdown_signal().await;
        tracing::info!("signal received; stopping");
    };
    crate::agent::run(clients, params, shutdown).await
}

/// A client of the API server with a client certificate.
async fn api_client(
    server: &str,
    ca: &str,
    cert_pem: String,
    key_pem: String,
) -> Result<kube::Client> {
    let pair = pki::CertAndKey { cert_pem, key_pem };
    let kubeconfig = pki::kubeconfig::render("k8rs", server, ca, &pair);
    let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .context("cannot build the API client configuration")?;
    kube::Client::try_from(config).context("cannot build an API client")
}

/// One HTTPS request; returns the status and body.
async fn request(
    authority: &http::uri::Authority,
    tls: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> Result<(u16, Bytes)> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .with_context(|| format!("invalid server name {host:?}"))?;
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with {authority} failed"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(secret) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {secret}"));
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body.to_string())))?)
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// The local address the kernel would use to reach the server.
async fn local_address_towards(authority: &http::uri::Authority) -> Result<IpAddr> {
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(443);
    let target = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .with_context(|| format!("{host} does not resolve"))?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = std::net::UdpSocket::bind(bind)?;
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}
