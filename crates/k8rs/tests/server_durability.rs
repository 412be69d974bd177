//! Whole-server durability: 16 writers create and update ConfigMaps through the API,
//! the `k8rs server` process is killed with SIGKILL in the middle of the stream and
//! started again on the same data dir. Every write the API acknowledged must be there
//! (an acknowledged update at least at that version), every object there must be
//! whole (exactly what some writer sent), and the server must take new writes. Run on
//! the default SQLite store and on etcd (which survives; only k8rs is killed).

#[path = "../../store/tests/support/etcd.rs"]
mod etcd;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use support::{Opts, Server};
use tokio::sync::Mutex;

const WRITERS: usize = 16;
/// ConfigMaps each writer owns and updates in turn.
const OBJECTS_PER_WRITER: usize = 4;
/// Acknowledged writes to see before the kill, so it lands mid-stream.
const ACKS_BEFORE_KILL: usize = 300;
const LABEL: &str = "durability=test";

/// What the API acknowledged for one object: its latest sequence number and
/// resourceVersion.
#[derive(Clone, Copy, Debug)]
struct Ack {
    seq: u64,
    rv: i64,
}

/// The content of `name` at `seq`: a few KiB that only that write carries.
fn payload(name: &str, seq: u64) -> String {
    format!("{name}/{seq};").repeat(300)
}

fn config_map(name: &str, seq: u64, rv: Option<String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([("durability".to_string(), "test".to_string())].into()),
            resource_version: rv,
            ..Default::default()
        },
        data: Some(
            [
                ("seq".to_string(), seq.to_string()),
                ("payload".to_string(), payload(name, seq)),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

async fn client(s: &Server) -> Api<ConfigMap> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&s.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Api::namespaced(kube::Client::try_from(config).unwrap(), "default")
}

/// What the writers saw.
#[derive(Default)]
struct Log {
    /// The latest acknowledged write of each object.
    latest: HashMap<String, Ack>,
    writes: usize,
    /// Why each writer stopped.
    stopped: Vec<String>,
}

/// Creates then updates its objects round-robin until a write fails (the server is
/// gone), recording each acknowledged write. The failed write's outcome is unknown.
async fn writer(api: Api<ConfigMap>, id: usize, log: Arc<Mutex<Log>>) {
    let names: Vec<String> = (0..OBJECTS_PER_WRITER)
        .map(|j| format!("w{id}-{j}"))
        .collect();
    let pp = PostParams::default();
    for seq in 0.. {
        let name = &names[seq as usize % names.len()];
        let last = log.lock().await.latest.get(name).copied();
        let written = match last {
            None => api.create(&pp, &config_map(name, seq, None)).await,
            Some(ack) => {
                let cm = config_map(name, seq, Some(ack.rv.to_string()));
                api.replace(name, &pp, &cm).await
            }
        };
        let cm = match written {
            Ok(cm) => cm,
            Err(e) => {
                log.lock().await.stopped.push(format!("w{id}: {e}"));
                return;
            }
        };
        let rv = cm.metadata.resource_version.unwrap().parse().unwrap();
        let mut log = log.lock().await;
        log.latest.insert(name.clone(), Ack { seq, rv });
        log.writes += 1;
    }
}

/// The writer that owns `name` (`w<id>-<j>`).
fn writer_of(name: &str) -> &str {
    name.split_once('-').map_or(name, |(w, _)| w)
}

fn survives_sigkill(opts: Opts) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut s = Server::start_with(opts);
    let api = rt.block_on(client(&s));
    let log = Arc::new(Mutex::new(Log::default()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| rt.spawn(writer(api.clone(), id, log.clone())))
        .collect();
    support::wait_for(
        "acknowledged writes before the kill",
        Duration::from_secs(30),
        || (log.blocking_lock().writes >= ACKS_BEFORE_KILL).then_some(()),
    );
    s.kill();
    let killed_at = log.blocking_lock().writes;
    rt.block_on(async {
        for w in writers {
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("writers stop once the server is gone")
                .unwrap();
        }
    });
    let (acked, writes) = {
        let log = log.blocking_lock();
        eprintln!(
            "{} writers stopped, first: {:?}",
            log.stopped.len(),
            log.stopped.first()
        );
        (log.latest.clone(), log.writes)
    };
    let took = Instant::now();
    s.restart();
    let restarted_in = took.elapsed();

    let api = rt.block_on(client(&s));
    let listed = rt
        .block_on(api.list(&ListParams::default().labels(LABEL)))
        .expect("the restarted server lists what it stored");
    let mut present = HashMap::new();
    for cm in listed.items {
        let name = cm.metadata.name.clone().unwrap();
        let data = cm.data.clone().unwrap_or_default();
        let seq: u64 = data
            .get("seq")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{name} has no whole seq: {data:?}"));
        assert!(
            data.get("payload") == Some(&payload(&name, seq)),
            "{name} at seq {seq} is not what its writer sent"
        );
        let rv: i64 = cm.metadata.resource_version.unwrap().parse().unwrap();
        present.insert(name, (seq, rv));
    }
    // Each writer had at most one write in flight at the kill: its next sequence
    // number, to any of its objects. It may or may not have landed; nothing later can.
    let mut next: HashMap<&str, u64> = HashMap::new();
    for (name, ack) in &acked {
        let n = next.entry(writer_of(name)).or_default();
        *n = (*n).max(ack.seq + 1);
    }
    let mut landed_in_flight: HashMap<&str, usize> = HashMap::new();
    for (name, &(seq, rv)) in &present {
        let ack = acked.get(name);
        if let Some(a) = ack.filter(|a| a.seq == seq) {
            assert_eq!(rv, a.rv, "{name}: the acknowledged write's resourceVersion");
            continue;
        }
        let w = writer_of(name);
        assert_eq!(
            Some(seq),
            next.get(w).copied().or(Some(0)),
            "{name} holds seq {seq}, neither acknowledged ({ack:?}) nor in flight"
        );
        *landed_in_flight.entry(w).or_default() += 1;
        if let Some(ack) = ack {
            assert!(rv > ack.rv, "{name}: resourceVersion {rv} after {}", ack.rv);
        }
    }
    assert!(landed_in_flight.values().all(|&n| n == 1));
    eprintln!(
        "killed after {killed_at} acknowledged writes ({writes} in all), {} unacknowledged \
         writes landed; restarted in {restarted_in:?}",
        landed_in_flight.len()
    );
    for (name, ack) in &acked {
        assert!(
            present.contains_key(name),
            "acknowledged {name} (seq {}) is gone",
            ack.seq
        );
    }

    // The restarted server takes new writes, on old objects and new ones.
    rt.block_on(async {
        let pp = PostParams::default();
        let (name, ack) = acked.iter().next().unwrap();
        let current = api.get(name).await.unwrap();
        let seq = ack.seq + 1000;
        let cm = config_map(name, seq, current.metadata.resource_version);
        api.replace(name, &pp, &cm).await.unwrap();
        api.create(&pp, &config_map("after-restart", 0, None))
            .await
            .unwrap();
        let got = api.get(name).await.unwrap();
        assert_eq!(got.data.unwrap()["payload"], payload(name, seq));
    });
}

#[test]
fn acknowledged_writes_survive_sigkill_on_sqlite() {
    survives_sigkill(Opts::default());
}

#[test]
fn acknowledged_writes_survive_sigkill_on_etcd() {
    let etcd = etcd::EtcdCluster::start(1);
    survives_sigkill(Opts {
        args: vec!["--datastore-endpoint".into(), etcd.endpoint(0)],
    });
}
