//! The built-in Ingress controller (the `ingress` crate, in place of k3s' Traefik):
//! every node serves Ingresses of the `k8rs` class on its ports 80 and 443; the
//! control plane creates the class and the `k8rs-ingress` Service and writes the
//! Ingresses' status.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use apiserver::auth::UserInfo;
use apiserver::auth::rbac::bootstrap::roles::INGRESS_USER;
use apiserver::server::Router;
use clap::Args;
use tokio::net::TcpListener;

/// Flags of the Ingress controller.
#[derive(Args, Debug, Clone)]
pub struct IngressArgs {
    /// Do not run the built-in Ingress controller (as k3s' `--disable=traefik`); on a
    /// server this also stops creating the `k8rs` IngressClass and writing Ingress
    /// status.
    #[arg(long)]
    pub disable_ingress: bool,
    /// The port the Ingress controller serves HTTP on, on every address of the node
    /// (0 picks a free one; the node's `k8rs-ingress` EndpointSlice says which).
    #[arg(long, default_value_t = 80)]
    pub ingress_http_port: u16,
    /// The port the Ingress controller serves HTTPS on (0 picks a free one).
    #[arg(long, default_value_t = 443)]
    pub ingress_https_port: u16,
}

/// Starts this node's controller in the background unless disabled, with `client`
/// authenticated as the controller (`system:k8rs-ingress`, bound to the
/// `k8rs:ingress-node` roles), never as the node. A port that cannot be bound is
/// logged; the rest keeps running.
pub fn start_node(client: kube::Client, node_name: &str, node_ip: IpAddr, args: &IngressArgs) {
    if args.disable_ingress {
        tracing::info!("ingress controller disabled (--disable-ingress)");
        tokio::spawn(unpublish(client, node_name.to_string()));
        return;
    }
    let node = ingress::NodeOptions {
        node_name: node_name.to_string(),
        node_ip,
    };
    let ports = (args.ingress_http_port, args.ingress_https_port);
    tokio::spawn(async move {
        let listeners = ingress::Listeners {
            http: bind("HTTP", ports.0).await,
            https: bind("HTTPS", ports.1).await,
        };
        if listeners.http.is_none() && listeners.https.is_none() {
            unpublish(client, node.node_name).await;
            return;
        }
        let (http, https) = (local_port(&listeners.http), local_port(&listeners.https));
        match ingress::start_node(client, listeners, node) {
            Ok(controller) => {
                tracing::info!(?http, ?https, "ingress controller listening");
                // The controller's tasks live as long as this one: the process.
                let _controller = controller;
                std::future::pending::<()>().await;
            }
            Err(e) => tracing::error!(error = %e, "the ingress controller cannot start"),
        }
    });
}

/// Takes back an earlier run's EndpointSlice, so Ingresses' status no longer names
/// this node.
async fn unpublish(client: kube::Client, node_name: String) {
    if let Err(e) = ingress::publish::remove_slice(&client, &node_name).await {
        tracing::warn!(error = %e, "cannot remove this node's k8rs-ingress EndpointSlice");
    }
}

async fn bind(what: &str, port: u16) -> Option<TcpListener> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(%addr, error = %e, "the ingress controller cannot listen for {what}; Ingresses are not served on it by this node");
            None
        }
    }
}

fn local_port(l: &Option<TcpListener>) -> Option<u16> {
    l.as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port())
}

/// Starts the control plane's part unless disabled: the `k8rs` IngressClass (the
/// default), the `k8rs-ingress` Service and the served Ingresses' status.
pub fn start_cluster(router: Router, args: &IngressArgs) {
    if args.disable_ingress {
        return;
    }
    let client = crate::inprocess::client(
        router,
        UserInfo::new(INGRESS_USER, vec!["system:masters".into()]),
    );
    tokio::spawn(async move {
        let _controller = ingress::start_cluster(client);
        std::future::pending::<()>().await;
    });
}
