//! The store backends side by side in one run: SQLite, a real etcd started on a free
//! loopback port (Debian's `etcd`), and the watch cache in front of each. For each:
//! writes/s at 1 and 64 concurrent writers, reads/s, a list of 10,000 keys at the
//! latest revision, and watch fan-out latency to 1,000 watchers.
//!
//! `cargo run --release -p bench --example store_perf [-- KEYS]`

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
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WATCHERS: usize = 1000;
const WATCH_EVENTS: usize = 200;

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

/// p50/p99 from a write's acknowledgement to its delivery, over all watchers.
async fn fan_out(s: &Arc<dyn Store>, prefix: &str) -> (Duration, Duration) {
    let mut streams = vec![];
    for _ in 0..WATCHERS {
        streams.push(s.watch(prefix, 0).await.expect("watch"));
    }
    let acked = Arc::new(slots::Times::new(WATCH_EVENTS));
    let mut tasks = vec![];
    for mut w in streams {
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(WATCH_EVENTS);
            for i in 0..WATCH_EVENTS {
                w.next().await.expect("event").expect("event ok");
                let sent = acked.wait(i).await;
                lat.push(sent.elapsed());
            }
            lat
        }));
    }
    for i in 0..WATCH_EVENTS {
        let before = Instant::now();
        s.create(&format!("{prefix}{i:06}"), value())
            .await
            .expect("create");
        acked.set(i, before);
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.expect("watcher"));
    }
    all.sort();
    (bench::percentile(&all, 50.0), bench::percentile(&all, 99.0))
}

/// Send-time slots the writer fills and watchers read (a write's start time, so the
/// latency includes the commit, as a client sees it).
mod slots {
    use std::time::Instant;
    use tokio::sync::watch;

    pub struct Times(Vec<watch::Sender<Option<Instant>>>);

    impl Times {
        pub fn new(n: usize) -> Self {
            Self((0..n).map(|_| watch::channel(None).0).collect())
        }
        pub fn set(&self, i: usize, t: Instant) {
            self.0[i].send_replace(Some(t));
        }
        pub async fn wait(&self, i: usize) -> Instant {
            let mut rx = self.0[i].subscribe();
            let t = rx.wait_for(Option::is_some).await.expect("sender kept");
            t.expect("set")
        }
    }
}

async fn run(name: &str, s: Arc<dyn Store>, keys: usize) {
    let one = writes(&s, "/registry/b1/", 1, keys / 10).await;
    let many = writes(&s, "/registry/b64/", 64, keys).await;
    let r = reads(&s, "/registry/b64/", keys).await;
    let (l, n) = list(&s, "/registry/b64/").await;
    let (p50, p99) = fan_out(&s, "/registry/bw/").await;
    println!(
        "{name:<16} write×1 {one:>8.0}/s  write×64 {many:>8.0}/s  read {r:>8.0}/s  list {n} {:>7.1}ms  watch×{WATCHERS} p50 {:>6.2}ms p99 {:>6.2}ms",
        l.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
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
    let keys: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    println!("{keys} keys, {WATCHERS} watchers × {WATCH_EVENTS} events");

    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("a.db")).expect("sqlite"));
    run("sqlite", sqlite, keys).await;

    let (_etcd, url) = start_etcd(&dir.path().join("etcd"));
    run("etcd", Arc::new(connect_etcd(&url).await), keys).await;

    let backend = Arc::new(SqliteStore::open(dir.path().join("b.db")).expect("sqlite"));
    let cached: Arc<dyn Store> = Arc::new(WatchCache::new(backend, CacheConfig::default()));
    run("sqlite+cache", cached, keys).await;

    let (_etcd2, url) = start_etcd(&dir.path().join("etcd2"));
    let backend = Arc::new(connect_etcd(&url).await);
    let cached: Arc<dyn Store> = Arc::new(WatchCache::new(backend, CacheConfig::default()));
    run("etcd+cache", cached, keys).await;
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
