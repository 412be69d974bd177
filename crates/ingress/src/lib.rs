//! The built-in Ingress controller (networking.k8s.io/v1), as upstream's controllers
//! behave: Ingresses of the `k8rs` IngressClass (the default class) are served by an
//! HTTP and an HTTPS reverse proxy on every node, straight to the ready endpoints of
//! their Services.
//!
//! - [`class`]: the IngressClass and which Ingresses are ours;
//! - [`routes`]: host and path matching (pure);
//! - [`backends`]: Service ports to ready endpoints, round robin (pure);
//! - [`certs`]: TLS key pairs from Secrets, chosen by SNI;
//! - [`table`]: all of it built from the watch caches, swapped whole on every change;
//! - [`proxy`], [`serve`]: the request path and the listeners;
//! - [`publish`]: the `k8rs-ingress` Service and each node's EndpointSlice (where the
//!   controller listens);
//! - [`status`]: `status.loadBalancer` of served Ingresses (the control plane writes it).

pub mod backends;
pub mod certs;
pub mod class;
pub mod proxy;
pub mod publish;
pub mod routes;
pub mod serve;
pub mod status;
pub mod table;
mod watch;

use std::fmt::Debug;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cert(#[from] certs::Error),
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The node the controller runs on.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub node_name: String,
    /// The address published for this node (Ingresses' `status.loadBalancer`).
    pub node_ip: IpAddr,
}

/// The bound listeners; either may be missing (its port could not be bound).
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
}

/// Background tasks; dropping this stops them.
pub struct Controller {
    _tasks: AbortOnDrop,
}

/// How often this node's EndpointSlice and the Service are checked (and repaired).
const ENSURE_INTERVAL: Duration = Duration::from_secs(60);
const RETRY: Duration = Duration::from_secs(2);

/// The node side: serves Ingresses on the listeners and publishes where in this
/// node's EndpointSlice of the `k8rs-ingress` Service.
pub fn start_node(
    client: kube::Client,
    listeners: Listeners,
    node: NodeOptions,
) -> Result<Controller, Error> {
    let (tx, rx) = tokio::sync::watch::channel(None);
    let proxy = Arc::new(proxy::Proxy::new(rx.clone()));
    let mut tasks = vec![tokio::spawn(watch::run(client.clone(), tx))];
    let target = publish::NodeTarget {
        node_name: node.node_name,
        node_ip: node.node_ip,
        http: listeners
            .http
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
        https: listeners
            .https
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
    };
    if let Some(l) = listeners.http {
        tasks.push(tokio::spawn(serve::http(l, proxy.clone())));
    }
    if let Some(l) = listeners.https {
        let resolver = Arc::new(certs::Resolver {
            table: rx,
            fallback: certs::self_signed()?,
        });
        tasks.push(tokio::spawn(serve::https(
            l,
            serve::tls_config(resolver)?,
            proxy,
        )));
    }
    tasks.push(tokio::spawn(async move {
        loop {
            let wait = match publish::ensure_slice(&client, &target).await {
                Ok(()) => ENSURE_INTERVAL,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot publish this node's ingress endpoints yet; retrying");
                    RETRY
                }
            };
            tokio::time::sleep(wait).await;
        }
    }));
    Ok(Controller {
        _tasks: AbortOnDrop(tasks),
    })
}

/// The cluster side, for the control plane: the `k8rs` IngressClass, the
/// `k8rs-ingress` Service, and the status of served Ingresses.
pub fn start_cluster(client: kube::Client) -> Controller {
    let c = client.clone();
    let ensure = tokio::spawn(async move {
        loop {
            let result = async {
                class::ensure_class(&c).await?;
                publish::ensure_service(&c).await
            };
            let wait = match result.await {
                Ok(()) => ENSURE_INTERVAL,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot write the k8rs IngressClass or Service; retrying");
                    RETRY
                }
            };
            tokio::time::sleep(wait).await;
        }
    });
    let status = tokio::spawn(status::run(client));
    Controller {
        _tasks: AbortOnDrop(vec![ensure, status]),
    }
}

/// A reflector of `api` filling a store; every change wakes `changed`.
pub(crate) fn reflect<K>(
    api: kube::Api<K>,
    config: watcher::Config,
    changed: &Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer) = reflector::store::<K>();
    let n = changed.clone();
    let stream = reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects()
        .for_each(move |_| {
            n.notify_one();
            async {}
        });
    (store, tokio::spawn(stream))
}

/// Ends the tasks when dropped.
pub(crate) struct AbortOnDrop(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
