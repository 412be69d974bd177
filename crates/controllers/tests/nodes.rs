//! Node IPAM, node lifecycle and taint-based eviction, with hollow nodes that are
//! stopped to simulate lost nodes.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::{stop, wait};
use testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_nodes_are_tainted_and_their_pods_evicted() {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let opts = hollow::Options {
        count: 2,
        lease_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let hollow = tokio::spawn(hollow::run(client.clone(), opts));
    tokio::spawn(controllers::node_ipam::run(
        client.clone(),
        "10.42.0.0/16".parse().unwrap(),
        24,
    ));
    let lifecycle = controllers::node_lifecycle::LifecycleOptions {
        grace_period: Duration::from_secs(3),
        period: Duration::from_millis(300),
    };
    tokio::spawn(controllers::node_lifecycle::run(client.clone(), lifecycle));

    let nodes: Api<Node> = Api::all(client.clone());
    let cidrs = wait("podCIDRs", || async {
        let list = nodes.list(&Default::default()).await.ok()?;
        let mut c: Vec<String> = list
            .items
            .iter()
            .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
            .collect();
        c.sort();
        (c.len() == 2).then_some(c)
    })
    .await;
    assert_eq!(cidrs, ["10.42.0.0/24", "10.42.1.0/24"]);

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "hollow-node-0",
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}],
        "containers": [{"name": "c", "image": "busybox"}]}});
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    wait("pod running", || async {
        (pods.get("p").await.ok()?.status?.phase? == "Running").then_some(())
    })
    .await;

    hollow.abort();
    let taints = wait("unreachable taints", || async {
        let n = nodes.get("hollow-node-0").await.ok()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .status
            .clone();
        let t = n.spec?.taints?;
        (ready == "Unknown" && t.len() == 2).then_some(t)
    })
    .await;
    assert!(
        taints
            .iter()
            .all(|t| t.key == "node.kubernetes.io/unreachable"),
        "{taints:?}"
    );
    wait("pod evicted", || async {
        pods.get("p")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    stop(s).await;
}
