//! API server throughput and latency on the SQLite store, beside the raw store doing
//! the same work, so the API layer's own overhead shows as a ratio: create at 50
//! concurrent clients (p50/p99), get, list of 10,000 objects, and watch delivery to
//! 1,000 watchers.
//!
//! `cargo run --release -p bench --example api_perf [-- OBJECTS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use store::Store;

/// The allocator the `k8rs` binary uses (see its main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 50;
const WATCHERS: usize = 1000;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"bench": "api"}}, "data": {"key": "value"}}),
    )
    .expect("configmap")
}

/// One phase's figures: n operations in `total`, their latencies and the CPU the whole
/// process used meanwhile.
struct Phase {
    total: Duration,
    lat: Vec<Duration>,
    cpu: Duration,
}

/// Prints a phase; returns (operations per second, CPU per operation in µs).
fn report(what: &str, n: usize, mut p: Phase) -> (f64, f64) {
    p.lat.sort();
    let rate = n as f64 / p.total.as_secs_f64();
    let cpu_us = p.cpu.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{what:<34} {rate:>9.0}/s  p50 {:>7.2}ms  p99 {:>7.2}ms  cpu {cpu_us:>6.1}us/op",
        bench::percentile(&p.lat, 50.0).as_secs_f64() * 1e3,
        bench::percentile(&p.lat, 99.0).as_secs_f64() * 1e3
    );
    (rate, cpu_us)
}

async fn timed<F, Fut>(n: usize, f: F) -> Phase
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (start, cpu) = (Instant::now(), bench::process_cpu_time());
    let lat: Vec<Duration> = futures::stream::iter(0..n)
        .map(|i| {
            let fut = f(i);
            async move {
                let t = Instant::now();
                fut.await;
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    Phase {
        total: start.elapsed(),
        lat,
        cpu: bench::process_cpu_time() - cpu,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);

    // The raw store doing the same writes and reads.
    let dir = tempfile::tempdir().expect("temp dir");
    let raw: Arc<dyn Store> =
        Arc::new(store::sqlite::SqliteStore::open(dir.path().join("raw.db")).expect("store"));
    let body = Bytes::from(serde_json::to_vec(&cm("x")).expect("json"));
    let phase = timed(n, |i| {
        let (raw, body) = (raw.clone(), body.clone());
        async move {
            raw.create(&format!("/registry/configmaps/default/cm-{i}"), body)
                .await
                .expect("create");
        }
    })
    .await;
    let raw_create = report("store: create (50 writers)", n, phase);
    let phase = timed(n, |i| {
        let raw = raw.clone();
        async move {
            raw.get(&format!("/registry/configmaps/default/cm-{i}"))
                .await
                .expect("get");
        }
    })
    .await;
    report("store: get", n, phase);
    let t = Instant::now();
    let listed = raw
        .list("/registry/configmaps/default/", Default::default())
        .await
        .expect("list");
    println!(
        "{:<34} {:>8.1}ms  ({} items)",
        "store: list all",
        t.elapsed().as_secs_f64() * 1e3,
        listed.items.len()
    );

    // The API server on its own store.
    let b = bench::Bench::sqlite().await;
    let client = b.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // Built beforehand, as the raw store's value is: the harness's own work is not
    // the API server's.
    let objects: Vec<ConfigMap> = (0..n).map(|i| cm(&format!("cm-{i}"))).collect();
    let phase = timed(n, |i| {
        let (api, object) = (api.clone(), &objects[i]);
        async move {
            api.create(&PostParams::default(), object)
                .await
                .expect("create");
        }
    })
    .await;
    let api_create = report("api: create (50 clients)", n, phase);
    let phase = timed(n, |i| {
        let api = api.clone();
        async move {
            api.get(&format!("cm-{i}")).await.expect("get");
        }
    })
    .await;
    report("api: get", n, phase);
    let t = Instant::now();
    let listed = api.list(&ListParams::default()).await.expect("list");
    println!(
        "{:<34} {:>8.1}ms  ({} items)",
        "api: list all",
        t.elapsed().as_secs_f64() * 1e3,
        listed.items.len()
    );

    // Watch delivery: one write, seen by every watcher; latency write → each watcher.
    // The watchers watch a namespace of their own, so their initial lists are small.
    let watched: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let mut ready = Vec::new();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api = watched.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx);
        watchers.push(tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            let mut tx = Some(tx);
            while let Some(ev) = s.try_next().await.expect("watch") {
                match ev {
                    watcher::Event::InitDone => {
                        if let Some(t) = tx.take() {
                            let _ = t.send(());
                        }
                    }
                    watcher::Event::Apply(_) => return Instant::now(),
                    _ => {}
                }
            }
            Instant::now()
        }));
    }
    for r in ready {
        let _ = r.await;
    }
    let sent = Instant::now();
    watched
        .create(&PostParams::default(), &cm("watched"))
        .await
        .expect("create watched");
    let mut lat = Vec::new();
    for w in watchers {
        lat.push(w.await.expect("watcher").duration_since(sent));
    }
    lat.sort();
    println!(
        "{:<34} p50 {:>7.2}ms  p99 {:>7.2}ms  ({WATCHERS} watchers)",
        "api: watch delivery",
        bench::percentile(&lat, 50.0).as_secs_f64() * 1e3,
        bench::percentile(&lat, 99.0).as_secs_f64() * 1e3
    );
    println!(
        "api create throughput / raw store create throughput = {:.2}",
        api_create.0 / raw_create.0
    );
    // The same comparison in CPU, which other load on a shared machine moves far less.
    println!(
        "api create cpu per object / raw store create cpu per object = {:.2}",
        api_create.1 / raw_create.1
    );
}
