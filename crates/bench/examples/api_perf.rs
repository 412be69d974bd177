//! API server throughput and latency on the SQLite store, beside the raw store doing
//! the same work, so the API layer's own overhead shows as a ratio: create at 50
//! concurrent clients (p50/p99; rounds alternating between the raw store, the store
//! behind the watch cache, the API with kube-rs clients and the API with prepared
//! requests), get, list of 10,000 objects, and watch delivery to 1,000 watchers: one
//! write, then writes back to back.
//!
//! `cargo run --release -p bench --example api_perf [-- OBJECTS [watch|create]]`; with
//! `watch`, only the watch phases run; with `create`, only creates with prepared
//! requests (for profiling the server's create path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use store::Store;

/// The allocator the `k8rs` binary uses (see its main.rs).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

const CONCURRENCY: usize = 50;
/// Create phases per side, alternating.
const CREATE_ROUNDS: usize = 5;
const WATCHERS: usize = 1000;
/// Writes made back to back while the watchers watch.
const BACK_TO_BACK: usize = 200;

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
        "{what:<40} {rate:>9.0}/s  p50 {:>7.2}ms  p99 {:>7.2}ms  cpu {cpu_us:>6.1}us/op",
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
    match std::env::args().nth(2).as_deref() {
        Some("watch") => {
            let b = bench::Bench::sqlite().await;
            watch_phases(&b.client()).await;
            return;
        }
        Some("create") => {
            let b = bench::Bench::sqlite().await;
            create_prepared(&b, "default", n).await;
            return;
        }
        _ => {}
    }

    let b = bench::Bench::sqlite().await;
    let client = b.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // The raw store doing the same writes and reads: each value is what the API server
    // stores for such an object (uid, creationTimestamp, managedFields, …), several
    // times the bytes of the client's body.
    let body = stored_form(&b, &api).await;
    println!("{:<40} {} bytes", "stored value", body.len());
    let dir = tempfile::tempdir().expect("temp dir");
    let raw: Arc<dyn Store> =
        Arc::new(store::sqlite::SqliteStore::open(dir.path().join("raw.db")).expect("store"));
    // The store as the API server has it: SQLite behind the watch cache, caching
    // ConfigMaps from the first list on.
    let cached: Arc<dyn Store> = Arc::new(store::cache::WatchCache::new(
        Arc::new(store::sqlite::SqliteStore::open(dir.path().join("cached.db")).expect("store")),
        store::cache::CacheConfig::default(),
    ));
    cached
        .list("/registry/configmaps/", Default::default())
        .await
        .expect("list");
    // Creates alternate between the raw stores and the API server, round after round,
    // so that a burst of other work on a shared machine hits one round of each side
    // rather than all of one; the ratios are of the medians.
    let (mut raw_rounds, mut cached_rounds) = (Vec::new(), Vec::new());
    let (mut api_rounds, mut prepared_rounds) = (Vec::new(), Vec::new());
    for round in 0..CREATE_ROUNDS {
        let ns = round_namespace(&client, round).await;
        raw_rounds.push(raw_create(&raw, "store", &body, &ns, n).await);
        cached_rounds.push(raw_create(&cached, "store + watch cache", &body, &ns, n).await);
        api_rounds.push(api_create(&client, &ns, n).await);
        // Beside the kube-rs clients' objects, not among them: the list phase reads
        // `default` as the first round filled it.
        let beside = namespace(&client, &format!("bench-prepared-{round}")).await;
        prepared_rounds.push(create_prepared(&b, &beside, n).await);
    }
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
        "{:<40} {:>8.1}ms  ({} items)",
        "store: list all",
        t.elapsed().as_secs_f64() * 1e3,
        listed.items.len()
    );

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
        "{:<40} {:>8.1}ms  ({} items)",
        "api: list all",
        t.elapsed().as_secs_f64() * 1e3,
        listed.items.len()
    );

    watch_phases(&client).await;
    let sides = [
        ("raw store", medians(&raw_rounds)),
        ("store + watch cache", medians(&cached_rounds)),
        ("api, kube-rs clients", medians(&api_rounds)),
        ("api, prepared requests", medians(&prepared_rounds)),
    ];
    println!("create, medians of {CREATE_ROUNDS} rounds:");
    for (side, (rate, cpu)) in &sides {
        println!("  {side:<38} {rate:>9.0}/s  cpu {cpu:>6.1}us/op");
    }
    // CPU per object too, which other load on a shared machine moves far less.
    for (api, (api_rate, api_cpu)) in &sides[2..] {
        for (store, (rate, cpu)) in &sides[..2] {
            println!(
                "{api} / {store}: create throughput {:.2}, cpu per object {:.2}",
                api_rate / rate,
                api_cpu / cpu
            );
        }
    }
}

/// The namespace of a round's creates: `default` for the first, whose objects the get
/// and list phases read, a fresh one for each later round.
async fn round_namespace(client: &kube::Client, round: usize) -> String {
    if round == 0 {
        return "default".to_string();
    }
    namespace(client, &format!("bench-round-{round}")).await
}

/// Creates namespace `name`; returns its name.
async fn namespace(client: &kube::Client, name: &str) -> String {
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    name.to_string()
}

/// `n` creates straight into a store, by [`CONCURRENCY`] writers.
async fn raw_create(
    raw: &Arc<dyn Store>,
    what: &str,
    body: &Bytes,
    ns: &str,
    n: usize,
) -> (f64, f64) {
    let phase = timed(n, |i| {
        let (raw, body) = (raw.clone(), body.clone());
        let key = format!("/registry/configmaps/{ns}/cm-{i}");
        async move {
            raw.create(&key, body).await.expect("create");
        }
    })
    .await;
    report(&format!("{what}: create (50 writers)"), n, phase)
}

/// `n` creates through the API server by [`CONCURRENCY`] kube-rs clients, the objects
/// built beforehand as the raw store's value is (the harness's work is not the
/// server's).
async fn api_create(client: &kube::Client, ns: &str, n: usize) -> (f64, f64) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
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
    report("api: create (50 clients)", n, phase)
}

/// The median rate and CPU per operation of several rounds.
fn medians(rounds: &[(f64, f64)]) -> (f64, f64) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (
        median(rounds.iter().map(|r| r.0).collect()),
        median(rounds.iter().map(|r| r.1).collect()),
    )
}

/// Creates `n` ConfigMaps in `ns` as [`CONCURRENCY`] clients that send requests
/// prepared beforehand straight to the server's router and read the response bytes
/// (a load generator's client), so the CPU is the server's rather than kube-rs's
/// transport and serde.
async fn create_prepared(b: &bench::Bench, ns: &str, n: usize) -> (f64, f64) {
    let uri = format!("/api/v1/namespaces/{ns}/configmaps");
    let bodies: Vec<Bytes> = (0..n)
        .map(|i| Bytes::from(serde_json::to_vec(&cm(&format!("prepared-{i}"))).expect("json")))
        .collect();
    let phase = timed(n, |i| {
        let req = http::Request::post(&uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(bodies[i].clone()))
            .expect("request");
        async move {
            let (status, _) = b.send(req).await;
            assert_eq!(status, http::StatusCode::CREATED);
        }
    })
    .await;
    report("api: create, prepared requests", n, phase)
}

/// The bytes the API server stores for one of the benchmark's ConfigMaps (a probe,
/// deleted again).
async fn stored_form(b: &bench::Bench, api: &Api<ConfigMap>) -> Bytes {
    let probe = api
        .create(&PostParams::default(), &cm("cm-probe"))
        .await
        .expect("probe create");
    let key = "/registry/configmaps/default/cm-probe";
    let stored = b.state.registry.store.get(key).await.expect("probe read");
    let name = probe.metadata.name.as_deref().expect("probe name");
    api.delete(name, &Default::default())
        .await
        .expect("probe delete");
    stored.expect("probe stored").value
}

/// Watch delivery through the API server to kube-rs watchers of one namespace (their
/// own, so their initial lists are small): one write seen by every watcher (after a
/// first one, so that every watch is established and only delivery is timed), then
/// [`BACK_TO_BACK`] writes made one after another without waiting for delivery.
/// Latency is from just before a write is sent to its receipt by each watcher; CPU is
/// the whole process's (server, clients and writes) per delivered event.
async fn watch_phases(client: &kube::Client) {
    let watched: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut ready = Vec::new();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api = watched.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(rx);
        let first_tx = first_tx.clone();
        watchers.push(tokio::spawn(async move {
            let mut s = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            let mut tx = Some(tx);
            // (index of the back-to-back write, receipt time)
            let mut seen = Vec::with_capacity(BACK_TO_BACK);
            while let Some(ev) = s.try_next().await.expect("watch") {
                match ev {
                    watcher::Event::InitDone => {
                        if let Some(t) = tx.take() {
                            let _ = t.send(());
                        }
                    }
                    watcher::Event::Apply(cm) => {
                        let at = Instant::now();
                        let name = cm.metadata.name.unwrap_or_default();
                        match name
                            .strip_prefix("b2b-")
                            .and_then(|i| i.parse::<usize>().ok())
                        {
                            Some(i) => seen.push((i, at)),
                            None => {
                                let _ = first_tx.send(at);
                            }
                        }
                        if seen.len() == BACK_TO_BACK {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            seen
        }));
    }
    drop(first_tx);
    for r in ready {
        let _ = r.await;
    }
    // kube-rs reports the initial list done before its watch request is made.
    watched
        .create(&PostParams::default(), &cm("warm-up"))
        .await
        .expect("create warm-up");
    for _ in 0..WATCHERS {
        first_rx.recv().await.expect("watcher");
    }
    let sent = Instant::now();
    watched
        .create(&PostParams::default(), &cm("watched"))
        .await
        .expect("create watched");
    let mut lat = Vec::new();
    for _ in 0..WATCHERS {
        lat.push(first_rx.recv().await.expect("watcher").duration_since(sent));
    }
    lat.sort();
    println!(
        "{:<40} p50 {:>7.2}ms  p99 {:>7.2}ms  ({WATCHERS} watchers)",
        "api: watch delivery",
        bench::percentile(&lat, 50.0).as_secs_f64() * 1e3,
        bench::percentile(&lat, 99.0).as_secs_f64() * 1e3
    );

    let (start, cpu, sent) = write_back_to_back(&watched, "b2b").await;
    let mut lat = Vec::with_capacity(WATCHERS * BACK_TO_BACK);
    for w in watchers {
        for (i, at) in w.await.expect("watcher") {
            lat.push(at.duration_since(sent[i]));
        }
    }
    let what = format!("api: watch {BACK_TO_BACK} back to back");
    report_deliveries(&what, lat, start.elapsed(), bench::process_cpu_time() - cpu);
    raw_back_to_back(client, &watched).await;
}

/// The back-to-back phase again with watchers that read the response's lines without
/// decoding them, so the CPU per event is the server's (and the in-process body's)
/// rather than mostly kube-rs's.
async fn raw_back_to_back(client: &kube::Client, watched: &Api<ConfigMap>) {
    let rv = watched
        .list_metadata(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("resourceVersion");
    let uri = format!("/api/v1/namespaces/kube-public/configmaps?watch=1&resourceVersion={rv}");
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let req = http::Request::get(&uri)
            .body(kube::client::Body::empty())
            .expect("request");
        // The response comes once the watch is registered.
        let mut body = client.send(req).await.expect("watch").into_body();
        watchers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(BACK_TO_BACK);
            while seen.len() < BACK_TO_BACK {
                let frame = body.frame().await.expect("open").expect("frame");
                let at = Instant::now();
                let lines = frame
                    .data_ref()
                    .map_or(0, |d| d.iter().filter(|b| **b == b'\n').count());
                seen.extend(std::iter::repeat_n(at, lines));
            }
            seen
        }));
    }
    let (start, cpu, sent) = write_back_to_back(watched, "raw").await;
    let mut lat = Vec::with_capacity(WATCHERS * BACK_TO_BACK);
    for w in watchers {
        // A watch sends the changes in order: its i-th line is the i-th write.
        for (i, at) in w.await.expect("watcher").into_iter().enumerate() {
            lat.push(at.duration_since(sent[i]));
        }
    }
    let what = format!("api: raw watch {BACK_TO_BACK} back to back");
    report_deliveries(&what, lat, start.elapsed(), bench::process_cpu_time() - cpu);
}

/// Prints a back-to-back watch phase: deliveries per second, their latency from the
/// write, and the process's CPU per delivered event.
fn report_deliveries(what: &str, mut lat: Vec<Duration>, total: Duration, cpu: Duration) {
    lat.sort();
    let delivered = lat.len();
    println!(
        "{what:<40} {:>9.0}/s  p50 {:>7.2}ms  p99 {:>7.2}ms  cpu {:>6.2}us/event",
        delivered as f64 / total.as_secs_f64(),
        bench::percentile(&lat, 50.0).as_secs_f64() * 1e3,
        bench::percentile(&lat, 99.0).as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / delivered as f64
    );
}

/// Creates the back-to-back phase's objects one after the other (built beforehand);
/// returns when the phase started, the process's CPU time then, and each write's start.
async fn write_back_to_back(
    watched: &Api<ConfigMap>,
    prefix: &str,
) -> (Instant, Duration, Vec<Instant>) {
    let objects: Vec<ConfigMap> = (0..BACK_TO_BACK)
        .map(|i| cm(&format!("{prefix}-{i}")))
        .collect();
    let (start, cpu) = (Instant::now(), bench::process_cpu_time());
    let mut sent = Vec::with_capacity(BACK_TO_BACK);
    for object in &objects {
        sent.push(Instant::now());
        watched
            .create(&PostParams::default(), object)
            .await
            .expect("create back to back");
    }
    (start, cpu, sent)
}
