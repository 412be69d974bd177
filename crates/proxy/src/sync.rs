//! Keeping the kernel in step with the API: watches fill caches, every change batch
//! recomputes the ruleset and applies the difference.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use tokio::sync::Notify;

use crate::model::service_ports;
use crate::nft::{self, Nftables};
use crate::rules::Ruleset;

#[derive(Clone, Debug)]
pub struct Options {
    pub node_name: String,
    pub cluster_cidr: Ipv4Net,
    /// Shortest time between two syncs, so bursts of changes share one transaction.
    pub min_sync_interval: Duration,
}

/// Programs nftables from the API until dropped. `synced` is told the time of every
/// applied sync (benchmarks and tests use it).
pub async fn run(
    client: kube::Client,
    opts: Options,
    nft: Arc<dyn Nftables>,
    synced: Option<tokio::sync::watch::Sender<Instant>>,
) {
    if let Err(e) = enable_forwarding() {
        tracing::warn!(error = %e, "cannot enable IPv4 forwarding");
    }
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
    tokio::spawn(services);
    tokio::spawn(slices);

    let mut applied: Option<Ruleset> = None;
    loop {
        changed.notified().await;
        let started = Instant::now();
        let ports = desired_ports(&svc_store.state(), &eps_store.state(), &opts.node_name);
        let wanted = Ruleset::build(&ports, opts.cluster_cidr);
        let result = match &applied {
            Some(prev) => match nft::diff(prev, &wanted) {
                None => Ok(()),
                Some(script) => nft.apply(&script),
            },
            None => nft.apply(
                &(nft::skeleton() + &nft::diff(&Ruleset::default(), &wanted).unwrap_or_default()),
            ),
        };
        match result {
            Ok(()) => {
                applied = Some(wanted);
                if let Some(tx) = &synced {
                    let _ = tx.send(Instant::now());
                }
                tracing::debug!(ports = ports.len(), took = ?started.elapsed(), "proxy rules synced");
            }
            Err(e) => {
                // Start over from a fresh table next time.
                tracing::warn!(error = %e, "applying proxy rules failed; resyncing everything");
                applied = None;
                changed.notify_one();
            }
        }
        tokio::time::sleep(opts.min_sync_interval).await;
    }
}

/// Every service port with its endpoints, from the caches.
fn desired_ports(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    node_name: &str,
) -> Vec<crate::model::ServicePort> {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let Some(svc) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
        else {
            continue;
        };
        let key = (
            s.metadata.namespace.clone().unwrap_or_default(),
            svc.clone(),
        );
        by_service.entry(key).or_default().push(s.as_ref());
    }
    services
        .iter()
        .flat_map(|svc| {
            let key = (
                svc.metadata.namespace.clone().unwrap_or_default(),
                svc.metadata.name.clone().unwrap_or_default(),
            );
            let slices = by_service.get(&key).map(Vec::as_slice).unwrap_or_default();
            service_ports(svc, slices, node_name)
        })
        .collect()
}

fn enable_forwarding() -> std::io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
}
