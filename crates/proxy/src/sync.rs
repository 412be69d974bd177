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
    /// The nftables table (`ip <table>`) this proxy owns; replaced whole on start.
    pub table: String,
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
    let services = tokio::spawn(services);
    let slices = tokio::spawn(slices);
    let _stop_watches = AbortOnDrop(vec![services, slices]);
    // A first sync from half-filled caches would reject services whose slices have
    // not arrived yet.
    let _ = svc_store.wait_until_ready().await;
    let _ = eps_store.wait_until_ready().await;
    changed.notify_one();

    let mut applied: Option<Ruleset> = None;
    let mut failures = 0u32;
    loop {
        changed.notified().await;
        let started = Instant::now();
        let ports = desired_ports(&svc_store.state(), &eps_store.state(), &opts.node_name);
        let wanted = Ruleset::build(&ports, opts.cluster_cidr);
        let result = match &applied {
            Some(prev) => nft.apply_ops(&opts.table, &nft::diff(prev, &wanted)),
            // The first sync (and every one after a failure) replaces the whole table
            // in one transaction, so nothing an earlier run left stays half-applied.
            None => nft.apply(
                &(nft::skeleton(&opts.table)
                    + &nft::script(&opts.table, &nft::diff(&Ruleset::default(), &wanted))),
            ),
        };
        match result {
            Ok(()) => {
                failures = 0;
                applied = Some(wanted);
                if let Some(tx) = &synced {
                    let _ = tx.send(Instant::now());
                }
                tracing::debug!(ports = ports.len(), took = ?started.elapsed(), "proxy rules synced");
            }
            Err(e) => {
                // Start over from a fresh table next time, backing off while it fails.
                failures += 1;
                let wait = opts.min_sync_interval * 2u32.saturating_pow(failures.min(5));
                tracing::warn!(error = %e, retry_in = ?wait, "applying proxy rules failed; resyncing everything");
                applied = None;
                changed.notify_one();
                tokio::time::sleep(wait).await;
            }
        }
        // As upstream's bounded-frequency runner: a change right after a quiet spell
        // is applied at once, later ones wait until min_sync_interval after this
        // sync started and then go in together.
        tokio::time::sleep_until((started + opts.min_sync_interval).into()).await;
    }
}

/// Ends the watch tasks when the proxy is dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
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
