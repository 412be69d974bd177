//! Pod startup latency on a real node, beside the raw CRI floor measured in the same
//! run: a `k8rs server` (release build, its own containerd) runs PODS busybox pods,
//! CONCURRENCY created at a time, each timed from its create call to the watch event
//! that shows it Running; as many sandboxes + containers are started straight through
//! CRI on the same containerd (RunPodSandbox, CreateContainer, StartContainer) with
//! the same concurrency, in rounds alternating with the pods'. Prints p50/p99 of both
//! and their ratio.
//!
//! Needs root and scripts/deps.sh's packages, and the release binary:
//! `cargo build --release -p k8rs && cargo run --release -p bench --example pod_startup [-- PODS CONCURRENCY]`

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use cri::RuntimeService;
use cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, PodSandboxConfig, PodSandboxMetadata,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::sync::Notify;

/// The allocator the `k8rs` binary uses (see its main.rs).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

const BRIDGE: &str = "k8rs-bps0";
const NODE: &str = "k8rs-bench-startup";
/// Raw and k8rs pods are started in this many alternating rounds.
const ROUNDS: usize = 4;

/// `k8rs server` with an agent, in `dir`; it exits when its stdin closes.
fn start_server(dir: &Path) -> Child {
    let exe = std::env::current_exe().expect("own path");
    // target/release/examples/pod_startup -> target/release/k8rs
    let k8rs = exe.parent().and_then(Path::parent).map(|d| d.join("k8rs"));
    let k8rs = k8rs.filter(|p| p.exists()).unwrap_or_else(|| {
        eprintln!("the k8rs binary is missing beside the example: run `cargo build --release -p k8rs` first");
        std::process::exit(2)
    });
    let log = std::fs::File::create(dir.join("server.log")).expect("server log");
    let arg = |s: &str| s.to_string();
    Command::new(k8rs)
        .args([
            arg("server"),
            arg("--data-dir"),
            dir.join("data").display().to_string(),
        ])
        .args(["--https-listen-port", "0", "--bind-address", "127.0.0.1"])
        .args(["--advertise-address", "127.0.0.1", "--kubelet-port", "0"])
        .args([
            "--write-kubeconfig",
            &dir.join("kubeconfig").display().to_string(),
        ])
        .args([
            "--cluster-cidr",
            "10.212.0.0/16",
            "--service-cidr",
            "10.213.0.0/16",
        ])
        .args([
            "--cluster-dns",
            "10.213.0.10",
            "--cni-bridge",
            BRIDGE,
            "--node-name",
            NODE,
        ])
        .args(["--disable-kube-proxy", "--disable-dns", "--disable-ingress"])
        .arg("--exit-with-stdin")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start k8rs server")
}

async fn wait<T, F: Future<Output = Option<T>>>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn client(dir: &Path) -> kube::Client {
    let path = dir.join("kubeconfig");
    let config = wait("the kubeconfig", Duration::from_secs(60), || async {
        let kc = kube::config::Kubeconfig::read_from(&path).ok()?;
        kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .ok()
    })
    .await;
    kube::Client::try_from(config).expect("client")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": "startup"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [
            {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]},
    }))
    .expect("pod")
}

/// When each bench pod was first seen Running, filled by one watch.
#[derive(Default)]
struct Running {
    at: Mutex<HashMap<String, Instant>>,
    changed: Notify,
}

async fn watch_running(pods: Api<Pod>, running: Arc<Running>) {
    let config = watcher::Config::default().labels("bench=startup");
    let mut events = watcher(pods, config).applied_objects().boxed();
    while let Some(Ok(p)) = events.next().await {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Running") {
            let name = p.metadata.name.unwrap_or_default();
            running.at.lock().entry(name).or_insert_with(Instant::now);
            running.changed.notify_waiters();
        }
    }
}

async fn start_pod(pods: &Api<Pod>, running: &Running, name: String) -> Duration {
    let t0 = Instant::now();
    pods.create(&PostParams::default(), &pod(&name))
        .await
        .expect("create pod");
    loop {
        let notified = running.changed.notified();
        if let Some(t) = running.at.lock().get(&name) {
            let took = t.duration_since(t0);
            if took > Duration::from_secs(5) {
                eprintln!("slow: {name} took {took:?}");
            }
            return took;
        }
        if tokio::time::timeout(Duration::from_secs(120), notified)
            .await
            .is_err()
        {
            panic!("pod {name} not Running within 2 minutes");
        }
    }
}

/// The floor: what the kubelet itself asks of the runtime for one pod.
async fn start_raw(rt: &cri::CriClient, logs: &Path, image: &str, i: usize) -> (Duration, String) {
    let t0 = Instant::now();
    let name = format!("raw-{i}");
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid: format!("bench-raw-{i}-{}", std::process::id()),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: name.clone(),
        log_directory: logs.join(&name).display().to_string(),
        ..Default::default()
    };
    let id = rt
        .run_pod_sandbox(sandbox.clone(), "")
        .await
        .expect("RunPodSandbox");
    let container = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "3600".into()],
        log_path: "c.log".into(),
        ..Default::default()
    };
    let c = rt
        .create_container(&id, container, sandbox)
        .await
        .expect("CreateContainer");
    rt.start_container(&c).await.expect("StartContainer");
    (t0.elapsed(), id)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn report(what: &str, mut d: Vec<Duration>) -> (Duration, Duration) {
    d.sort();
    let (p50, p99) = (percentile(&d, 0.50), percentile(&d, 0.99));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<28} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms",
        ms(p50),
        ms(p99),
        ms(*d.last().unwrap())
    );
    (p50, p99)
}

async fn run(dir: &Path, count: usize, concurrency: usize) {
    let client = client(dir).await;
    let nodes: Api<Node> = Api::all(client.clone());
    wait("the node Ready", Duration::from_secs(120), || async {
        let n = nodes.get_opt(NODE).await.ok()??;
        let ready = n
            .status?
            .conditions?
            .into_iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::default_namespaced(client.clone());
    wait(
        "the default service account",
        Duration::from_secs(60),
        || async { sa.get_opt("default").await.ok()? },
    )
    .await;

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let running = Arc::new(Running::default());
    tokio::spawn(watch_running(pods.clone(), running.clone()));
    // Warm-up: the builtin images are imported and the first sandbox is made.
    start_pod(&pods, &running, "warm-up".into()).await;

    let socket = containerd_config(&dir.join("data/agent")).socket();
    let rt = cri::CriClient::connect(&socket)
        .await
        .expect("connect to the agent's containerd");
    let images: &dyn cri::ImageService = &rt;
    let image = images
        .image_status(cri::image_spec("busybox"))
        .await
        .expect("ImageStatus");
    let image = image.expect("busybox imported").id;
    let logs = dir.join("raw-logs");

    // Alternating rounds, so that load from elsewhere on the machine falls on both.
    let (mut raw, mut k8rs) = (Vec::new(), Vec::new());
    let per_round = count.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        let ids = round * per_round..((round + 1) * per_round).min(count);
        let r: Vec<(Duration, String)> = futures::stream::iter(ids.clone())
            .map(|i| start_raw(&rt, &logs, &image, i))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        raw.extend(r);
        let k: Vec<Duration> = futures::stream::iter(ids)
            .map(|i| start_pod(&pods, &running, format!("pod-{i}")))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        k8rs.extend(k);
    }
    for (_, id) in &raw {
        let _ = rt.stop_pod_sandbox(id).await;
        let _ = rt.remove_pod_sandbox(id).await;
    }

    println!("{count} pods, {concurrency} at a time, busybox (present), one node:");
    let (raw50, raw99) = report(
        "raw CRI (sandbox+container)",
        raw.into_iter().map(|r| r.0).collect(),
    );
    let (k50, k99) = report("k8rs create -> Running", k8rs);
    println!(
        "ratio k8rs / raw CRI: p50 {:.2}x, p99 {:.2}x",
        k50.as_secs_f64() / raw50.as_secs_f64(),
        k99.as_secs_f64() / raw99.as_secs_f64()
    );

    // Delete through the API so the kubelet tears the sandboxes (and their CNI) down.
    let _ = pods
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("bench=startup"),
        )
        .await;
    wait("bench pods deleted", Duration::from_secs(180), || async {
        pods.list(&ListParams::default().labels("bench=startup"))
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    wait("sandboxes removed", Duration::from_secs(60), || async {
        rt.list_pod_sandbox(None)
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (count, concurrency) = (
        args.first().copied().unwrap_or(100),
        args.get(1).copied().unwrap_or(10),
    );
    let dir = tempfile::Builder::new()
        .prefix("k8rs-pod-startup")
        .tempdir()
        .expect("temp dir");
    let mut server = start_server(dir.path());
    let result = tokio::spawn({
        let dir = dir.path().to_path_buf();
        async move { run(&dir, count, concurrency).await }
    })
    .await;
    // Closing stdin stops the server; then clear what its agent left.
    drop(server.stdin.take());
    let _ = server.wait();
    cleanup(&dir.path().join("data/agent"));
    // K8RS_BENCH_KEEP=1 keeps the data dir and the server log to look into.
    if std::env::var_os("K8RS_BENCH_KEEP").is_some() || result.is_err() {
        eprintln!("kept {} (server.log inside)", dir.keep().display());
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Kills what the agent's containerd left (shims, mounts) and the bridge.
fn cleanup(agent: &Path) {
    if let Err(e) = cri::containerd::force_cleanup(&containerd_config(agent)) {
        eprintln!("cleanup of {}: {e}", agent.display());
    }
    let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
}

/// The agent's containerd, as `k8rs server` lays it out under its data dir.
fn containerd_config(agent: &Path) -> cri::containerd::Config {
    cri::containerd::Config::new(agent.join("containerd"), agent.join("etc/cni/net.d"))
}
