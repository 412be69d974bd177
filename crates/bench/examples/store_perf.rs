//! The store backends side by side in one run: SQLite, a real etcd started on a free
//! loopback port (Debian's `etcd`), and the watch cache in front of each. For each:
//! writes/s at 1 and 64 concurrent writers, reads/s, a list of 10,000 keys at the
//! latest revision, and watch fan-out latency to 1,000 watchers.
//!
//! `cargo run --release -p bench --example store_perf [-- KEYS [BACKEND,...]]`, the
//! backends among `sqlite`, `etcd`, `sqlite+cache`, `etcd+cache` (default: all four).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use store::cache::{CacheConfig, WatchCache};
use store::etcd::{EtcdConfig, EtcdStore};
use store::sqlite::SqliteStore;
use store::{ListOptions, Store};

/// The allocator the `k8rs` binary uses (see its main.rs).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

const WATCHERS: usize = 1000;
const WATCH_EVENTS: usize = 200;
/// The paced watch run's interval between writes: about etcd's single-writer commit
/// time here, so the backends are compared at one event rate too.
const PACE: Duration = Duration::from_millis(1);

fn value() -> Bytes {
    // About the size of a small ConfigMap in JSON.
    Bytes::from(format!("{{\"data\":\"{}\"}}", "v".repeat(400)))
}

async fn writes(s: &Arc<dyn Store>, prefix: &str, writers: usize, total: usize) -> f64 {
    let start = Instant::now();
    futures::stream::iter(0..total)
        .map(|i| {
            let s = s.clone();
            let key = format!("{prefix}{i:06}");
            async move { s.create(&key, value()).await.expect("create") }
        })
        .buffer_unordered(writers)
        .for_each(|_| async {})
        .await;
    total as f64 / start.elapsed().as_secs_f64()
}

async fn reads(s: &Arc<dyn Store>, prefix: &str, total: usize) -> f64 {
    let start = Instant::now();
    futures::stream::iter(0..total)
        .map(|i| {
            let s = s.clone();
            let key = format!("{prefix}{:06}", i % total);
            async move { s.get(&key).await.expect("get") }
        })
        .buffer_unordered(64)
        .for_each(|_| async {})
        .await;
    total as f64 / start.elapsed().as_secs_f64()
}

/// Median time to list every key under `prefix`, each list after a write to another
/// resource type, as in a live cluster where the revision keeps moving.
async fn list(s: &Arc<dyn Store>, prefix: &str) -> (Duration, usize) {
    let mut times = vec![];
    let mut n = 0;
    for i in 0..5 {
        s.create(&format!("/registry/bother/{i}"), value())
            .await
            .expect("create");
        let t = Instant::now();
        n = s
            .list(prefix, ListOptions::default())
            .await
            .expect("list")
            .items
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    (times[2], n)
}

/// Watch delivery to [`WATCHERS`] watchers of [`WATCH_EVENTS`] writes issued one after
/// another: as fast as the store acknowledges them, or one per `pace` at most.
struct FanOut {
    /// p50/p99 from the start of a write to a watcher holding its event, over all
    /// watchers: what a client that writes and one that watches see together.
    from_write: (Duration, Duration),
    /// p50/p99 from the write's acknowledgement to a watcher holding its event (zero when
    /// the event arrived first).
    from_ack: (Duration, Duration),
    /// p50/p99 from the start of a write to its acknowledgement.
    commit: (Duration, Duration),
}

/// Each watcher stamps an event the moment it receives it and the figures are worked
/// out afterwards, so timing adds no work (and no wake-ups) to the delivery itself.
async fn fan_out(s: &Arc<dyn Store>, prefix: &str, pace: Option<Duration>) -> FanOut {
    let mut streams = vec![];
    for _ in 0..WATCHERS {
        streams.push(s.watch(prefix, 0).await.expect("watch"));
    }
    let mut tasks = vec![];
    for mut w in streams {
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(WATCH_EVENTS);
            for _ in 0..WATCH_EVENTS {
                let ev = w.next().await.expect("event").expect("event ok");
                got.push((Instant::now(), ev.revision()));
            }
            got
        }));
    }
    let mut writes = Vec::with_capacity(WATCH_EVENTS);
    let mut ticks = pace.map(tokio::time::interval);
    for i in 0..WATCH_EVENTS {
        if let Some(t) = ticks.as_mut() {
            t.tick().await;
        }
        let issued = Instant::now();
        let kv = s
            .create(&format!("{prefix}{i:06}"), value())
            .await
            .expect("create");
        writes.push((issued, Instant::now(), kv.mod_revision));
    }
    let (mut from_write, mut from_ack) = (vec![], vec![]);
    for t in tasks {
        for ((at, revision), (issued, acked, written)) in
            t.await.expect("watcher").into_iter().zip(&writes)
        {
            assert_eq!(revision, *written, "events in write order");
            from_write.push(at - *issued);
            from_ack.push(at.saturating_duration_since(*acked));
        }
    }
    let mut commit: Vec<Duration> = writes.iter().map(|(i, a, _)| *a - *i).collect();
    FanOut {
        from_write: p50_p99(&mut from_write),
        from_ack: p50_p99(&mut from_ack),
        commit: p50_p99(&mut commit),
    }
}

fn p50_p99(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (
        bench::percentile(samples, 50.0),
        bench::percentile(samples, 99.0),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run(name: &str, s: Arc<dyn Store>, keys: usize) {
    let one = writes(&s, "/registry/b1/", 1, keys / 10).await;
    let many = writes(&s, "/registry/b64/", 64, keys).await;
    let r = reads(&s, "/registry/b64/", keys).await;
    let (l, n) = list(&s, "/registry/b64/").await;
    let burst = fan_out(&s, "/registry/bw/", None).await;
    let paced = fan_out(&s, "/registry/bp/", Some(PACE)).await;
    println!(
        "{name:<16} write×1 {one:>8.0}/s  write×64 {many:>8.0}/s  read {r:>8.0}/s  list {n} {:>7.1}ms",
        ms(l)
    );
    for (how, w) in [("back to back", burst), ("1 write/ms", paced)] {
        println!(
            "  watch×{WATCHERS} {how:<12} from write p50 {:>6.2}ms p99 {:>6.2}ms | from ack p50 {:>6.2}ms p99 {:>6.2}ms | commit p50 {:>6.2}ms p99 {:>6.2}ms",
            ms(w.from_write.0),
            ms(w.from_write.1),
            ms(w.from_ack.0),
            ms(w.from_ack.1),
            ms(w.commit.0),
            ms(w.commit.1),
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_etcd(dir: &std::path::Path) -> (Etcd, String) {
    let (client, peer) = (free_port(), free_port());
    let url = format!("http://127.0.0.1:{client}");
    let child = Command::new("etcd")
        .args(["--data-dir", dir.to_str().expect("utf-8 path")])
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args(["--quota-backend-bytes", "8589934592"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd on PATH (apt-get install etcd-server)");
    (Etcd(child), url)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let keys: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    // An optional comma-separated subset of the backends, for quicker comparisons.
    let only: Option<Vec<&str>> = args.get(2).map(|a| a.split(',').collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.contains(&name));
    let dir = tempfile::tempdir().expect("temp dir");
    println!("{keys} keys, {WATCHERS} watchers × {WATCH_EVENTS} events");

    if wanted("sqlite") {
        let sqlite: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path().join("a.db")).expect("sqlite"));
        run("sqlite", sqlite, keys).await;
    }
    if wanted("etcd") {
        let (_etcd, url) = start_etcd(&dir.path().join("etcd"));
        run("etcd", Arc::new(connect_etcd(&url).await), keys).await;
    }
    if wanted("sqlite+cache") {
        let backend = Arc::new(SqliteStore::open(dir.path().join("b.db")).expect("sqlite"));
        let cached: Arc<dyn Store> = Arc::new(WatchCache::new(backend, CacheConfig::default()));
        run("sqlite+cache", cached, keys).await;
    }
    if wanted("etcd+cache") {
        let (_etcd, url) = start_etcd(&dir.path().join("etcd2"));
        let backend = Arc::new(connect_etcd(&url).await);
        let cached: Arc<dyn Store> = Arc::new(WatchCache::new(backend, CacheConfig::default()));
        run("etcd+cache", cached, keys).await;
    }
}

async fn connect_etcd(url: &str) -> EtcdStore {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let config = EtcdConfig {
            endpoints: vec![url.to_string()],
            ca_file: None,
            cert_file: None,
            key_file: None,
        };
        match EtcdStore::connect(config).await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("etcd did not come up: {e}"),
        }
    }
}
