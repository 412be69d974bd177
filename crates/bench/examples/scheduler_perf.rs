//! Upstream scheduler_perf's SchedulingBasic shape: 5,000 nodes, 10,000 pods with
//! requests, timed from the first pod created to the last pod bound; prints pods/s.
//!
//! `cargo run --release -p bench --example scheduler_perf [-- NODES PODS]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// The allocator the `k8rs` binary uses (see its main.rs).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

fn node(i: usize) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i}"), "labels": {"kubernetes.io/hostname": format!("node-{i}")}},
        "status": {
            "allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }))
    .expect("node")
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": format!("pod-{i}"), "labels": {"app": "perf"}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]},
    }))
    .expect("pod")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (nodes, pods) = (
        args.first().copied().unwrap_or(5000),
        args.get(1).copied().unwrap_or(10_000),
    );
    let b = bench::Bench::sqlite().await;
    let client = b.client();

    let t = Instant::now();
    let node_api: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..nodes)
        .map(|i| {
            let api = node_api.clone();
            async move {
                api.create(&PostParams::default(), &node(i))
                    .await
                    .expect("create node")
            }
        })
        .buffer_unordered(64)
        .for_each(|_| async {})
        .await;
    println!("created {nodes} nodes in {:.1}s", t.elapsed().as_secs_f64());

    let (tx, leading) = tokio::sync::watch::channel(true);
    let sched_client = b.client();
    tokio::spawn(async move {
        let _leader = tx;
        scheduler::run(sched_client, scheduler::Options::default(), leading).await
    });
    // Let the scheduler's informers see every node first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let bound = Arc::new(AtomicUsize::new(0));
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let counter = bound.clone();
    let watch_api = pod_api.clone();
    let done = tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        let mut events = watcher(watch_api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(p) = events.try_next().await.expect("watch") {
            let bound_now = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
            if bound_now
                && seen.insert(p.metadata.name.clone())
                && counter.fetch_add(1, Ordering::SeqCst) + 1 == pods
            {
                return Instant::now();
            }
        }
        Instant::now()
    });

    let start = Instant::now();
    futures::stream::iter(0..pods)
        .map(|i| {
            let api = pod_api.clone();
            async move {
                api.create(&PostParams::default(), &pod(i))
                    .await
                    .expect("create pod")
            }
        })
        .buffer_unordered(64)
        .for_each(|_| async {})
        .await;
    let created = start.elapsed();
    let end = tokio::time::timeout(Duration::from_secs(600), done)
        .await
        .expect("all pods bound in time")
        .expect("watch task");
    let total = end.duration_since(start);
    println!(
        "created {pods} pods in {:.1}s ({:.0} pods/s)",
        created.as_secs_f64(),
        pods as f64 / created.as_secs_f64()
    );
    println!(
        "SchedulingBasic {nodes} nodes / {pods} pods: first created -> last bound {:.2}s = {:.0} pods/s",
        total.as_secs_f64(),
        pods as f64 / total.as_secs_f64()
    );
}
