//! Cluster DNS, built in: answers for Services, their endpoints and pods as CoreDNS's
//! kubernetes plugin does (`pods insecure`, TTL 5 s), everything else forwarded to the
//! host's resolvers. Services and EndpointSlices come from watches, so answers follow
//! the API within a watch event's latency.
//!
//! - [`zone`]: the records, pure data built from the caches;
//! - [`server`]: the UDP and TCP listeners, messages in and out;
//! - [`forward`]: the upstream resolvers from resolv.conf;
//! - [`kube_dns`]: the `kube-dns` Service and the EndpointSlice pointing at this server;
//! - [`metrics`]: request counters under CoreDNS's metric names, served over HTTP.

pub mod forward;
pub mod kube_dns;
pub mod metrics;
pub mod server;
pub mod zone;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::{Notify, watch};

pub use zone::Zone;

#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster domain (`cluster.local`).
    pub domain: String,
    /// Where to listen, UDP and TCP; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Who gets every other question.
    pub upstreams: UpstreamSource,
    /// Where `/metrics` is served (CoreDNS: :9153); None: not served. A port that
    /// cannot be bound is logged and skipped, the DNS server runs on.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub enum UpstreamSource {
    /// The nameservers of a resolv.conf (the host's `/etc/resolv.conf`), port 53.
    ResolvConf(PathBuf),
    /// These servers (tests).
    Fixed(Vec<SocketAddr>),
}

/// A running DNS server; dropping it stops it.
pub struct Dns {
    /// The address it listens on (UDP and TCP).
    pub addr: SocketAddr,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    _tasks: AbortOnDrop,
}

/// Binds the listeners and starts serving and watching. Names of the cluster are
/// answered (SERVFAIL before) once the Service and EndpointSlice caches have filled.
pub async fn start(client: kube::Client, opts: Options) -> std::io::Result<Dns> {
    let (udp, tcp) = server::bind(opts.listen).await?;
    let addr = udp.local_addr()?;
    let (tx, rx) = watch::channel(None);
    let metrics = Arc::new(metrics::Metrics::new(addr));
    let handler = Arc::new(server::Handler {
        domain: opts.domain.clone(),
        zone: rx,
        upstreams: match &opts.upstreams {
            UpstreamSource::ResolvConf(path) => forward::Upstreams::from_resolv_conf(path, addr),
            UpstreamSource::Fixed(servers) => forward::Upstreams {
                servers: servers.clone(),
            },
        },
        metrics: metrics.clone(),
    });
    tracing::info!(%addr, domain = %opts.domain, upstreams = ?handler.upstreams.servers, "cluster DNS listening");
    let serving = tokio::spawn(server::serve(udp, tcp, handler));
    let watching = tokio::spawn(watch_zone(client, opts.domain, tx));
    let mut tasks = vec![serving, watching];
    let mut metrics_addr = None;
    if let Some(listen) = opts.metrics_listen {
        match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => {
                metrics_addr = l.local_addr().ok();
                tasks.push(tokio::spawn(metrics::serve(l, metrics)));
            }
            Err(e) => {
                tracing::warn!(%listen, error = %e, "cannot serve the cluster DNS metrics");
            }
        }
    }
    Ok(Dns {
        addr,
        metrics_addr,
        _tasks: AbortOnDrop(tasks),
    })
}

/// Keeps `zone` the zone of the API's Services and EndpointSlices.
async fn watch_zone(client: kube::Client, domain: String, zone: watch::Sender<Option<Arc<Zone>>>) {
    let changed = Arc::new(Notify::new());
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
    let n = changed.clone();
    let services = reflector(
        svc_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .for_each(move |_| {
        n.notify_one();
        async {}
    });
    let n = changed.clone();
    let slices = reflector(
        eps_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects()
    .for_each(move |_| {
        n.notify_one();
        async {}
    });
    let _watches = AbortOnDrop(vec![tokio::spawn(services), tokio::spawn(slices)]);
    let _ = svc_store.wait_until_ready().await;
    let _ = eps_store.wait_until_ready().await;
    loop {
        let services = svc_store.state();
        let slices = eps_store.state();
        let services: Vec<&Service> = services.iter().map(Arc::as_ref).collect();
        let slices: Vec<&EndpointSlice> = slices.iter().map(Arc::as_ref).collect();
        let built = Zone::build(&domain, &services, &slices);
        tracing::debug!(services = services.len(), "cluster DNS zone rebuilt");
        if zone.send(Some(Arc::new(built))).is_err() {
            return;
        }
        changed.notified().await;
    }
}

/// Ends tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
