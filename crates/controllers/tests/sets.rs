//! DaemonSets and StatefulSets against the real API server with hollow nodes and the
//! scheduler.

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{server_with_nodes, stop, wait};

fn start_scheduler(client: &kube::Client) {
    let (tx, rx) = tokio::sync::watch::channel(true);
    let c = client.clone();
    tokio::spawn(async move {
        let _leader = tx;
        scheduler::run(c, scheduler::Options::default(), rx).await
    });
}

async fn pods_with(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_eligible_node() {
    let (s, client) = server_with_nodes(3).await;
    start_scheduler(&client);
    tokio::spawn(controllers::daemonset::run(client.clone()));
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds = json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    dss.create(&PostParams::default(), &serde_json::from_value(ds).unwrap())
        .await
        .unwrap();
    wait("3 ready daemon pods", || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.desired_number_scheduled == 3 && st.number_ready == 3).then_some(())
    })
    .await;
    let nodes: BTreeSet<String> = pods_with(&client, "app=agent")
        .await
        .into_iter()
        .filter_map(|p| p.spec?.node_name)
        .collect();
    assert_eq!(nodes.len(), 3, "one per node");

    // A NoSchedule taint it does not tolerate takes the node out.
    let n: Api<Node> = Api::all(client.clone());
    let taint =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}});
    n.patch(
        "hollow-node-2",
        &PatchParams::default(),
        &Patch::Merge(&taint),
    )
    .await
    .unwrap();
    wait("two daemon pods", || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.desired_number_scheduled == 2 && pods_with(&client, "app=agent").await.len() == 2)
            .then_some(())
    })
    .await;

    // A template change rolls every pod to the new revision.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}});
    dss.patch("agent", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    wait("rolled out", || async {
        let pods = pods_with(&client, "app=agent").await;
        let images: Vec<String> = pods
            .iter()
            .filter_map(|p| p.spec.as_ref()?.containers[0].image.clone())
            .collect();
        (images.len() == 2 && images.iter().all(|i| i == "busybox:2")).then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_orders_names_and_claims() {
    let (s, client) = server_with_nodes(2).await;
    start_scheduler(&client);
    tokio::spawn(controllers::statefulset::run(client.clone()));
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let sts = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3, "serviceName": "web",
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(sts).unwrap(),
    )
    .await
    .unwrap();
    wait("3 ready replicas", || async {
        (sets.get("web").await.ok()?.status?.ready_replicas? == 3).then_some(())
    })
    .await;
    let mut names: Vec<String> = pods_with(&client, "app=web")
        .await
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let mut claims: Vec<String> = pvcs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    claims.sort();
    assert_eq!(claims, ["data-web-0", "data-web-1", "data-web-2"]);

    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    wait("scaled to one", || async {
        let names: Vec<String> = pods_with(&client, "app=web")
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        (names == ["web-0"]).then_some(())
    })
    .await;
    stop(s).await;
}
