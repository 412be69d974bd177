//! Network programming latency of the service proxy: SERVICES Services (default
//! 10,000) with two ready endpoints each, the real proxy against an in-process API
//! server programming the real kernel (its own nftables tables: a main table and
//! SHARDS shards, default the proxy's), then endpoint changes,
//! each timed from the start of its API write until traffic to the ClusterIP reaches
//! the new endpoint. Prints the first full sync, p50/p99 of the latency for changes
//! made one at a time (PACED, each after the min sync interval has passed, as in a
//! quiet cluster) and all at once (BURST, which the interval batches), the heap the
//! proxy holds, and the size of its table.
//!
//! "Live" is observed, not assumed: 10.241.0.0/16 (the fake pod network) is routed
//! to this host, so a connection through a ClusterIP whose rules still point at the
//! old endpoints is refused at once, and one whose rules point at the new endpoint
//! (10.241.255.1, where this program listens) is accepted.
//!
//! Needs root. `cargo run --release -p bench --example proxy_perf [-- SERVICES PACED BURST [SHARDS]]`

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

/// Every byte the program holds on the Rust heap, so the proxy's share can be told
/// apart from the process's (SQLite's own allocations are not counted). Allocates
/// from mimalloc, as the `k8rs` binary does.
struct Counting;

static HEAP: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to mimalloc, with the same
// layout and pointer; the only addition is a counter, which allocates nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { allocator::Mimalloc.alloc(layout) };
        if !p.is_null() {
            HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { allocator::Mimalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            HEAP.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from mimalloc, with `layout`.
        unsafe { allocator::Mimalloc.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`; `new_size` is the caller's, valid for `layout.align()`.
        let p = unsafe { allocator::Mimalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            HEAP.fetch_add(new_size, Ordering::Relaxed);
            HEAP.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TABLE: &str = "k8rs-bench-proxy";
const SERVICE_CIDR: &str = "10.240.0.0/16";
const POD_CIDR: &str = "10.241.0.0/16";
/// The endpoint changes move services to; this program listens there.
const LIVE_ENDPOINT: Ipv4Addr = Ipv4Addr::new(10, 241, 255, 1);
/// Where probes come from: inside the pod network, so nothing is masqueraded.
const PROBE_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 241, 255, 254);
const NODE: &str = "bench-node";

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

/// The fake pod network routed to this host, and the proxy's table; both removed on
/// drop (and on ctrl-c).
struct Host;

impl Host {
    fn set_up() -> Self {
        Self::tear_down();
        assert!(
            sh(&format!("ip route add local {POD_CIDR} dev lo table local")),
            "cannot route {POD_CIDR} to this host (root needed)"
        );
        Self
    }

    fn tear_down() {
        let _ = Command::new("ip")
            .args([
                "route", "del", "local", POD_CIDR, "dev", "lo", "table", "local",
            ])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = proxy::nft::cleanup(&proxy::nft::NftCommand, TABLE);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        Self::tear_down();
    }
}

/// Fake pod IPs: two per service, all in the pod network below 10.241.255.0.
fn pod_ip(service: usize, n: usize) -> String {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 241, 0, 1)) + (2 * service + n) as u32).to_string()
}

fn slice(i: usize, port: u16) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = [0, 1]
        .iter()
        .map(|n| json!({"addresses": [pod_ip(i, *n)], "conditions": {"ready": true}, "nodeName": NODE}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("svc-{i}-bench"), "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("slice")
}

/// A rollout step: the new pod (this program) is ready, the old ones are not.
fn rollout(i: usize) -> serde_json::Value {
    let mut endpoints = vec![json!({"addresses": [LIVE_ENDPOINT.to_string()],
        "conditions": {"ready": true}, "nodeName": NODE})];
    for n in [0, 1] {
        endpoints.push(json!({"addresses": [pod_ip(i, n)],
            "conditions": {"ready": false, "serving": false, "terminating": true}, "nodeName": NODE}));
    }
    json!({"endpoints": endpoints})
}

/// Whether a connection through `cluster_ip:80` reaches the new endpoint.
async fn live(cluster_ip: Ipv4Addr) -> bool {
    let Ok(sock) = TcpSocket::new_v4() else {
        return false;
    };
    if sock.bind(SocketAddr::from((PROBE_SOURCE, 0))).is_err() {
        return false;
    }
    let connect = sock.connect(SocketAddr::from((cluster_ip, 80)));
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Ok(stream)) => {
            // Reset rather than linger in TIME_WAIT: thousands of probes follow.
            let _ = stream.set_zero_linger();
            true
        }
        _ => false,
    }
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{what:<40} n={:<4} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
        lat.len(),
        ms(bench::percentile(&lat, 50.0)),
        ms(bench::percentile(&lat, 99.0)),
        ms(lat.last().copied().unwrap_or_default()),
    );
}

/// `nft list table` of each of `tables`, concatenated.
fn list_tables(tables: &[String], what: &str) -> String {
    tables
        .iter()
        .map(|t| {
            let out = Command::new("nft")
                .args(["list", what, "ip", t])
                .args((what == "map").then_some("service-ips"))
                .output()
                .expect("nft");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// The tables' size as `nft` lists them: chains, rules, map and set elements.
fn table_size(tables: &proxy::tables::Tables) -> String {
    let t = Instant::now();
    let text = list_tables(tables.names(), "table");
    let (mut chains, mut rules, mut in_set) = (0, 0, false);
    for l in text.lines().map(str::trim) {
        if l.starts_with("set ") || l.starts_with("map ") {
            in_set = true;
        } else if in_set {
            in_set = l != "}";
        } else if l.starts_with("chain ") {
            chains += 1;
        } else if !l.is_empty() && !l.starts_with("table ") && !l.starts_with("type ") && l != "}" {
            rules += 1;
        }
    }
    let elements = text.matches(": goto ").count();
    // The hairpin set's elements, `ip . ip`: the only pairs of one address listed
    // (tokens, as nft wraps long element lists anywhere).
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || ",{}".contains(c))
        .filter(|t| !t.is_empty())
        .collect();
    let pairs = tokens
        .windows(3)
        .filter(|w| w[1] == "." && w[0] == w[2] && w[0].parse::<Ipv4Addr>().is_ok())
        .count();
    format!(
        "{chains} chains, {rules} rules, {elements} map elements, {pairs} hairpin pairs ({} lines; `nft list table` of each took {:.2}s)",
        text.lines().count(),
        t.elapsed().as_secs_f64()
    )
}

/// Waits for the proxy's next applied sync; its completion time.
async fn next_sync(synced: &mut watch::Receiver<Instant>) -> Instant {
    tokio::time::timeout(Duration::from_secs(120), synced.changed())
        .await
        .expect("the proxy synced in time")
        .expect("proxy running");
    *synced.borrow_and_update()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // RUST_LOG=proxy=debug shows each sync's timing.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let services = args.first().copied().unwrap_or(10_000);
    let paced = args.get(1).copied().unwrap_or(200);
    let burst = args.get(2).copied().unwrap_or(200);
    let shards = args.get(3).copied().unwrap_or(proxy::DEFAULT_SHARDS);
    let tables = proxy::tables::Tables::new(TABLE, shards);
    assert!(
        paced + burst <= services,
        "each change needs a service of its own"
    );

    let host = Host::set_up();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        Host::tear_down();
        std::process::exit(130);
    });
    let listener = TcpListener::bind((LIVE_ENDPOINT, 0)).await.expect("listen");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Arc::new(store::sqlite::SqliteStore::open(dir.path().join("state.db")).expect("store"));
    let b = bench::Bench::with_service_cidr(store, dir, SERVICE_CIDR.parse().expect("cidr")).await;
    let client = b.client();

    let t = Instant::now();
    let svc_api: Api<Service> = Api::namespaced(client.clone(), "default");
    let slice_api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let mut cluster_ips: Vec<(usize, Ipv4Addr)> = futures::stream::iter(0..services)
        .map(|i| {
            let (svc_api, slice_api) = (svc_api.clone(), slice_api.clone());
            async move {
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": format!("svc-{i}")},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]},
                }))
                .expect("service");
                let svc = svc_api
                    .create(&PostParams::default(), &svc)
                    .await
                    .expect("create service");
                slice_api
                    .create(&PostParams::default(), &slice(i, port))
                    .await
                    .expect("create slice");
                let ip = svc.spec.and_then(|s| s.cluster_ip).expect("cluster IP");
                (i, ip.parse().expect("IPv4 cluster IP"))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    cluster_ips.sort();
    let cluster_ips: Vec<Ipv4Addr> = cluster_ips.into_iter().map(|(_, ip)| ip).collect();
    println!(
        "created {services} Services and EndpointSlices in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    rebuild_cost(&svc_api, &slice_api, services).await;

    let (heap0, rss0) = (HEAP.load(Ordering::Relaxed), rss());
    let (tx, mut synced) = watch::channel(Instant::now());
    synced.borrow_and_update();
    let opts = proxy::Options {
        table: TABLE.into(),
        node_name: NODE.into(),
        cluster_cidr: POD_CIDR.parse().expect("cidr"),
        min_sync_interval: proxy::DEFAULT_MIN_SYNC_INTERVAL,
        shards,
    };
    let started = Instant::now();
    let proxy_client = b.client();
    let proxy = tokio::spawn(async move {
        proxy::run(
            proxy_client,
            opts,
            Arc::new(proxy::nft::NftCommand),
            Some(tx),
        )
        .await
    });
    let first = next_sync(&mut synced).await;
    println!(
        "first sync (list, build, `nft -f` of all {} tables): {:.2}s",
        tables.names().len(),
        first.duration_since(started).as_secs_f64()
    );
    // Every service is in a shard's map, and traffic follows the rules.
    let map = list_tables(&tables.names()[1..], "map");
    let present: HashSet<&str> = map
        .split([',', '{', '\n'])
        .filter_map(|e| e.trim().split(" . tcp . 80 :").next())
        .collect();
    let missing = cluster_ips
        .iter()
        .filter(|ip| !present.contains(ip.to_string().as_str()))
        .count();
    assert_eq!(
        missing, 0,
        "services missing from the kernel's service-ips map"
    );
    assert!(!live(cluster_ips[0]).await, "refused before any change");
    let (heap1, rss1) = (HEAP.load(Ordering::Relaxed), rss());
    println!(
        "proxy memory after the first sync: heap +{:.1} MiB (process RSS +{:.1} MiB, includes the API server's list buffers)",
        mib(heap1.saturating_sub(heap0)),
        mib(rss1.saturating_sub(rss0))
    );

    // Distinct services for every change, spread over the whole range.
    let mut stride = 7919;
    while gcd(stride, services) != 1 {
        stride += 1;
    }
    let mut order = (0..services).map(|k| (k * stride) % services);

    // One at a time, each after the proxy's min sync interval has passed.
    let mut lat = Vec::with_capacity(paced);
    let mut last_live = Instant::now();
    for _ in 0..paced {
        let i = order.next().expect("a service");
        tokio::time::sleep_until(
            (last_live + proxy::DEFAULT_MIN_SYNC_INTERVAL + Duration::from_millis(50)).into(),
        )
        .await;
        let t0 = Instant::now();
        slice_api
            .patch(
                &format!("svc-{i}-bench"),
                &PatchParams::default(),
                &Patch::Merge(rollout(i)),
            )
            .await
            .expect("patch slice");
        let deadline = t0 + Duration::from_secs(30);
        while !live(cluster_ips[i]).await {
            assert!(Instant::now() < deadline, "svc-{i} never went live");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        last_live = Instant::now();
        lat.push(last_live - t0);
    }
    report("paced (one change at a time)", lat);

    // All at once: written back to back, each checked after every applied sync. A
    // change counts as live at the completion of the first sync after which its
    // ClusterIP reaches the new endpoint (the later one if two syncs completed
    // while checking).
    tokio::time::sleep_until((last_live + proxy::DEFAULT_MIN_SYNC_INTERVAL).into()).await;
    synced.borrow_and_update();
    let mut pending: Vec<(usize, Instant)> = Vec::with_capacity(burst);
    for _ in 0..burst {
        let i = order.next().expect("a service");
        let t0 = Instant::now();
        slice_api
            .patch(
                &format!("svc-{i}-bench"),
                &PatchParams::default(),
                &Patch::Merge(rollout(i)),
            )
            .await
            .expect("patch slice");
        pending.push((i, t0));
    }
    let written = match (pending.first(), pending.last()) {
        (Some(first), Some(last)) => last.1 - first.1,
        _ => Duration::ZERO,
    };
    let mut lat = Vec::with_capacity(burst);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} changes never went live",
            pending.len()
        );
        let sync = next_sync(&mut synced).await;
        let mut still = Vec::new();
        let mut done = Vec::new();
        for (i, t0) in pending {
            if live(cluster_ips[i]).await {
                done.push(t0);
            } else {
                still.push((i, t0));
            }
        }
        let sync = if synced.has_changed().unwrap_or(false) {
            *synced.borrow()
        } else {
            sync
        };
        lat.extend(
            done.into_iter()
                .map(|t0| sync.saturating_duration_since(t0)),
        );
        pending = still;
    }
    println!("burst of {burst} written in {:.2}s", written.as_secs_f64());
    report("burst (all at once, min sync 1 s)", lat);

    let (heap2, rss2) = (HEAP.load(Ordering::Relaxed), rss());
    println!(
        "proxy memory after the changes: heap +{:.1} MiB (process RSS +{:.1} MiB)",
        mib(heap2.saturating_sub(heap0)),
        mib(rss2.saturating_sub(rss0))
    );
    println!(
        "nft table {TABLE} and {shards} shards: {}",
        table_size(&tables)
    );
    proxy.abort();
    drop(host);
}

/// The Rust side of a whole-table sync: rebuilding the ruleset from every object and
/// diffing it against the applied one (a change touches only its services' parts).
async fn rebuild_cost(svc_api: &Api<Service>, slice_api: &Api<EndpointSlice>, services: usize) {
    let (t, heap) = (Instant::now(), HEAP.load(Ordering::Relaxed));
    let all_services = svc_api.list(&Default::default()).await.expect("list").items;
    let all_slices = slice_api
        .list(&Default::default())
        .await
        .expect("list")
        .items;
    let objects = HEAP.load(Ordering::Relaxed).saturating_sub(heap);
    println!(
        "listed them in {:.2}s; as objects they take {:.1} MiB of heap (what the proxy's caches hold)",
        t.elapsed().as_secs_f64(),
        mib(objects)
    );
    let by_name: std::collections::HashMap<&str, &EndpointSlice> = all_slices
        .iter()
        .map(|s| (s.metadata.name.as_deref().unwrap_or_default(), s))
        .collect();
    let build = || {
        let ports: Vec<_> = all_services
            .iter()
            .flat_map(|svc| {
                let name = format!("{}-bench", svc.metadata.name.as_deref().unwrap_or_default());
                let slices: Vec<&EndpointSlice> =
                    by_name.get(name.as_str()).copied().into_iter().collect();
                proxy::model::service_ports(svc, &slices, NODE)
            })
            .collect();
        proxy::rules::Ruleset::build(&ports, POD_CIDR.parse().expect("cidr"))
    };
    let heap = HEAP.load(Ordering::Relaxed);
    let applied = build();
    println!(
        "the whole ruleset as data: {:.1} MiB of heap",
        mib(HEAP.load(Ordering::Relaxed).saturating_sub(heap))
    );
    let t = Instant::now();
    let wanted = build();
    let ops = proxy::nft::diff(&applied, &wanted).len();
    println!(
        "a whole-ruleset rebuild + diff at {services} services (first sync and relists only): {:.1} ms ({ops} changes)",
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}
