//! Keeping the kernel in step with the API: watches fill caches and note which
//! services changed; every sync recomputes those services' rules and applies the
//! difference.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::model::service_ports;
use crate::nft::{self, Nftables};
use crate::programmed::{Programmed, ServiceKey};
use crate::rules::Ruleset;
use crate::tables::Tables;

/// Upstream's nftables `--min-sync-period` default; what `k8rs` runs with.
pub const DEFAULT_MIN_SYNC_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Options {
    /// The proxy's main nftables table (`ip <table>`); it and its shards
    /// (`<table>-svc-<i>`) are replaced whole on start.
    pub table: String,
    /// How many shard tables the services are spread over (`tables::DEFAULT_SHARDS`).
    pub shards: usize,
    pub node_name: String,
    pub cluster_cidr: Ipv4Net,
    /// Shortest time between two syncs, so bursts of changes share one transaction.
    pub min_sync_interval: Duration,
}

/// Which services changed since the last sync, from the watch events.
#[derive(Default)]
struct Tracker {
    dirty: HashSet<ServiceKey>,
    /// Everything is to be recomputed (first sync, a watch relisted).
    all: bool,
    /// The service each slice belonged to when last seen, so a slice that moves to
    /// another service (or goes) marks the old one too.
    slice_owner: HashMap<ServiceKey, ServiceKey>,
    /// Each service's slices by name (an index the store lacks).
    members: HashMap<ServiceKey, HashSet<String>>,
}

fn key(meta: &kube::api::ObjectMeta) -> ServiceKey {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The service an EndpointSlice belongs to, by its `kubernetes.io/service-name` label.
fn owner(slice: &EndpointSlice) -> Option<ServiceKey> {
    let svc = slice
        .metadata
        .labels
        .as_ref()?
        .get("kubernetes.io/service-name")?;
    Some((
        slice.metadata.namespace.clone().unwrap_or_default(),
        svc.clone(),
    ))
}

impl Tracker {
    fn service(&mut self, ev: &Event<Service>) {
        match ev {
            Event::Apply(s) | Event::Delete(s) => {
                self.dirty.insert(key(&s.metadata));
            }
            // The store now holds the relisted objects; some may have gone unseen.
            Event::InitDone => self.all = true,
            Event::Init | Event::InitApply(_) => {}
        }
    }

    fn slice(&mut self, ev: &Event<EndpointSlice>) {
        match ev {
            Event::Apply(s) | Event::InitApply(s) => {
                let old = self.set_owner(&s.metadata, owner(s));
                if matches!(ev, Event::Apply(_)) {
                    self.dirty.extend(old.into_iter().chain(owner(s)));
                }
            }
            Event::Delete(s) => {
                let old = self.set_owner(&s.metadata, None);
                self.dirty.extend(old.into_iter().chain(owner(s)));
            }
            Event::InitDone => self.all = true,
            Event::Init => {}
        }
    }

    /// Records the slice's service; returns the one it had.
    fn set_owner(
        &mut self,
        slice: &kube::api::ObjectMeta,
        owner: Option<ServiceKey>,
    ) -> Option<ServiceKey> {
        let (id, name) = (key(slice), slice.name.clone().unwrap_or_default());
        let old = match &owner {
            Some(o) => self.slice_owner.insert(id, o.clone()),
            None => self.slice_owner.remove(&id),
        };
        if let Some(old) = &old
            && let Some(m) = self.members.get_mut(old)
        {
            m.remove(&name);
            if m.is_empty() {
                self.members.remove(old);
            }
        }
        if let Some(o) = owner {
            self.members.entry(o).or_default().insert(name);
        }
        old
    }
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
    let tracker = Arc::new(Mutex::new(Tracker::default()));
    let (svc_store, svc_writer) = reflector::store::<Service>();
    let (eps_store, eps_writer) = reflector::store::<EndpointSlice>();
    let (n, t) = (changed.clone(), tracker.clone());
    let services = reflector(
        svc_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        )
        .modify(drop_managed_fields),
    )
    .default_backoff()
    .for_each(move |ev| {
        if let Ok(ev) = ev {
            t.lock().service(&ev);
            n.notify_one();
        }
        async {}
    });
    let (n, t) = (changed.clone(), tracker.clone());
    let slices = reflector(
        eps_writer,
        watcher(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
        )
        .modify(drop_managed_fields),
    )
    .default_backoff()
    .for_each(move |ev| {
        if let Ok(ev) = ev {
            t.lock().slice(&ev);
            n.notify_one();
        }
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

    let tables = Tables::new(&opts.table, opts.shards);
    // What the kernel holds; `None` until every table is loaded whole (again).
    let mut programmed: Option<Programmed> = None;
    let mut failures = 0u32;
    loop {
        changed.notified().await;
        let started = Instant::now();
        let (dirty, all) = {
            let mut t = tracker.lock();
            let dirty: HashMap<ServiceKey, Vec<String>> = std::mem::take(&mut t.dirty)
                .into_iter()
                .map(|k| {
                    let slices = t.members.get(&k).into_iter().flatten().cloned().collect();
                    (k, slices)
                })
                .collect();
            (dirty, std::mem::take(&mut t.all))
        };
        let wanted = match &programmed {
            Some(_) if !all => changed_parts(&dirty, &svc_store, &eps_store, &opts),
            Some(p) => {
                let mut w = all_parts(&svc_store.state(), &eps_store.state(), &opts);
                for gone in p.services() {
                    w.entry(gone.clone()).or_insert(None);
                }
                w
            }
            None => all_parts(&svc_store.state(), &eps_store.state(), &opts),
        };
        let fresh = Programmed::new(tables.clone());
        let change = programmed.as_ref().unwrap_or(&fresh).change(&wanted);
        let computed = started.elapsed();
        let (nft, t, whole) = (nft.clone(), tables.clone(), programmed.is_none());
        // `nft` and netlink block (a whole load takes seconds): off the async workers.
        let (result, changes) = tokio::task::spawn_blocking(move || {
            let steps = nft::diff_tables(&t, &change);
            let result = if whole {
                // The first sync (and every one after a failure) replaces every table
                // in one transaction, so nothing an earlier run left stays
                // half-applied.
                nft::load(nft.as_ref(), &t, &steps)
            } else {
                nft.apply_ops(&steps)
            };
            (result, steps.len())
        })
        .await
        .unwrap_or_else(|e| (Err(nft::NftError::Task(e.to_string())), 0));
        match result {
            Ok(()) => {
                failures = 0;
                let wanted_len = wanted.len();
                programmed
                    .get_or_insert_with(|| Programmed::new(tables.clone()))
                    .commit(wanted);
                if let Some(tx) = &synced {
                    let _ = tx.send(Instant::now());
                }
                tracing::debug!(services = wanted_len, changes, ?computed, took = ?started.elapsed(), "proxy rules synced");
            }
            Err(e) => {
                // Start over from a fresh table next time, backing off while it fails.
                failures += 1;
                let wait = opts.min_sync_interval * 2u32.saturating_pow(failures.min(5));
                tracing::warn!(error = %e, retry_in = ?wait, "applying proxy rules failed; resyncing everything");
                programmed = None;
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

/// The proxy never reads managedFields; objects with many field managers need not
/// weigh on its caches. (proxy_perf's objects carry little: its heap did not change.)
fn drop_managed_fields<K: kube::ResourceExt>(obj: &mut K) {
    obj.managed_fields_mut().clear();
}

/// A service's part of the ruleset.
fn part(svc: &Service, slices: &[&EndpointSlice], opts: &Options) -> Ruleset {
    Ruleset::build(
        &service_ports(svc, slices, &opts.node_name),
        opts.cluster_cidr,
    )
}

/// The parts of `dirty` services (with their slices' names), `None` for those gone.
fn changed_parts(
    dirty: &HashMap<ServiceKey, Vec<String>>,
    services: &reflector::Store<Service>,
    slices: &reflector::Store<EndpointSlice>,
    opts: &Options,
) -> HashMap<ServiceKey, Option<Ruleset>> {
    dirty
        .iter()
        .map(|(k, names)| {
            let svc = services.get(&ObjectRef::new(&k.1).within(&k.0));
            let found: Vec<Arc<EndpointSlice>> = names
                .iter()
                .filter_map(|n| slices.get(&ObjectRef::new(n).within(&k.0)))
                // The index may lag a relabelled slice; the label decides.
                .filter(|s| owner(s).as_ref() == Some(k))
                .collect();
            let found: Vec<&EndpointSlice> = found.iter().map(Arc::as_ref).collect();
            (k.clone(), svc.map(|svc| part(&svc, &found, opts)))
        })
        .collect()
}

/// Every service's part, from the caches.
fn all_parts(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    opts: &Options,
) -> HashMap<ServiceKey, Option<Ruleset>> {
    let mut by_service: HashMap<ServiceKey, Vec<&EndpointSlice>> = HashMap::new();
    for s in slices {
        if let Some(o) = owner(s) {
            by_service.entry(o).or_default().push(s.as_ref());
        }
    }
    services
        .iter()
        .map(|svc| {
            let k = key(&svc.metadata);
            let slices = by_service.get(&k).map(Vec::as_slice).unwrap_or_default();
            let p = part(svc, slices, opts);
            (k, Some(p))
        })
        .collect()
}

fn enable_forwarding() -> std::io::Result<()> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
}
