//! The scheduler against the real API server (in-process) with hollow nodes: pods get
//! bound and run; pods that fit nowhere stay Pending with upstream's message; cordoned
//! nodes and node selectors are honoured; higher priority pods preempt.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::TestServer;

async fn start() -> (TestServer, kube::Client) {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let opts = hollow::Options {
        count: 3,
        cpu: "2".into(),
        ..Default::default()
    };
    tokio::spawn(hollow::run(client.clone(), opts));
    let (tx, leading) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        let _leader = tx;
        scheduler::run(client, scheduler::Options::default(), leading).await
    });
    let c = s.client();
    let nodes: Api<Node> = Api::all(c.clone());
    wait("3 nodes", || async {
        (nodes.list(&Default::default()).await.unwrap().items.len() == 3).then_some(())
    })
    .await;
    (s, c)
}

async fn wait<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, cpu: &str, extra: serde_json::Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]},
    });
    if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(p).unwrap()
}

async fn node_of(pods: &Api<Pod>, name: &str) -> Option<String> {
    pods.get(name).await.ok()?.spec?.node_name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_and_explains() {
    let (s, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());

    // Cordon one node, then two 1-CPU pods spread over the other two 2-CPU nodes.
    nodes
        .patch(
            "hollow-node-0",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    for i in 0..2 {
        pods.create(
            &PostParams::default(),
            &pod(&format!("p{i}"), "1", json!({})),
        )
        .await
        .unwrap();
    }
    let mut placed = Vec::new();
    for i in 0..2 {
        let name = format!("p{i}");
        placed.push(wait("binding", || async { node_of(&pods, &name).await }).await);
    }
    placed.sort();
    assert_eq!(
        placed,
        ["hollow-node-1", "hollow-node-2"],
        "least-allocated spreads them"
    );

    // A 1.5-CPU pod fits nowhere: explained in upstream's words.
    pods.create(&PostParams::default(), &pod("big", "1500m", json!({})))
        .await
        .unwrap();
    let msg = wait("PodScheduled=False", || async {
        let p = pods.get("big").await.ok()?;
        let c = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        c.message
    })
    .await;
    assert!(
        msg.starts_with(
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
        ),
        "{msg}"
    );

    // Uncordoning gives the pending pod a node without any retry from us.
    nodes
        .patch(
            "hollow-node-0",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"unschedulable": false}})),
        )
        .await
        .unwrap();
    let n = wait("big scheduled", || async { node_of(&pods, "big").await }).await;
    assert_eq!(n, "hollow-node-0");

    // A nodeSelector that nothing matches.
    pods.create(
        &PostParams::default(),
        &pod("sel", "10m", json!({"nodeSelector": {"disk": "ssd"}})),
    )
    .await
    .unwrap();
    let msg = wait("selector message", || async {
        let p = pods.get("sel").await.ok()?;
        p.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")?
            .message
    })
    .await;
    assert!(
        msg.starts_with(
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        ),
        "{msg}"
    );
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}
