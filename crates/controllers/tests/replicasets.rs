//! ReplicaSets and ReplicationControllers against the real API server: scaling,
//! adoption and release, deletion order, status, events. No nodes run here: tests mark
//! pods scheduled and ready themselves through `pods/binding` and `pods/status`.

mod common;

use common::{bind, events_for, live_pods, make_ready, server, start, stop, wait};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

/// Binds the pod to `node` and marks it Running and Ready.
async fn ready_on(client: &kube::Client, name: &str, node: &str) {
    bind(client, name, node).await;
    make_ready(client, name).await;
}

fn rs_body(name: &str, replicas: i32, min_ready: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_scales_up_and_down_with_status_and_events() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset"]);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &rs_body("web", 3, 0))
        .await
        .unwrap();

    let pods = wait("3 pods", || async {
        let pods = live_pods(&client, "app=web").await;
        (pods.len() == 3).then_some(pods)
    })
    .await;
    let uid = sets.get("web").await.unwrap().metadata.uid.unwrap();
    for p in &pods {
        let name = p.metadata.name.as_deref().unwrap();
        assert!(
            name.starts_with("web-") && name.len() == 9,
            "generated name {name}"
        );
        let r = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                r.kind.as_str(),
                r.uid.as_str(),
                r.controller,
                r.block_owner_deletion
            ),
            ("ReplicaSet", uid.as_str(), Some(true), Some(true))
        );
    }
    let first = pods[0].metadata.name.clone().unwrap();
    wait("SuccessfulCreate events", || async {
        let ev = events_for(&client, "web").await;
        ev.iter()
            .any(|(r, m)| r == "SuccessfulCreate" && *m == format!("Created pod: {first}"))
            .then_some(())
    })
    .await;

    // Two ready pods: status counts them; the unready one goes first on scale-down.
    ready_on(&client, pods[0].metadata.name.as_deref().unwrap(), "n1").await;
    ready_on(&client, pods[1].metadata.name.as_deref().unwrap(), "n2").await;
    wait("2 ready", || async {
        let st = sets.get("web").await.ok()?.status?;
        (st.replicas == 3
            && st.ready_replicas == Some(2)
            && st.available_replicas == Some(2)
            && st.fully_labeled_replicas == Some(3))
        .then_some(())
    })
    .await;
    s.ok(&["scale", "replicaset", "web", "--replicas=2"]);
    let unready = pods[2].metadata.name.clone().unwrap();
    wait("the unready pod deleted", || async {
        let names: Vec<String> = live_pods(&client, "app=web")
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        (names.len() == 2 && !names.contains(&unready)).then_some(())
    })
    .await;
    wait("SuccessfulDelete event", || async {
        let ev = events_for(&client, "web").await;
        ev.iter()
            .any(|(r, m)| r == "SuccessfulDelete" && *m == format!("Deleted pod: {unready}"))
            .then_some(())
    })
    .await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    wait("scaled to zero", || async {
        let st = sets.get("web").await.ok()?.status?;
        (live_pods(&client, "app=web").await.is_empty() && st.replicas == 0).then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_adopts_orphans_and_releases_pods_that_stop_matching() {
    let (s, client) = server().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let orphan: Pod = serde_json::from_value(
        json!({"metadata": {"name": "orphan", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    let _controllers = start(&client, &["replicaset"]);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &rs_body("api", 2, 0))
        .await
        .unwrap();
    let uid = sets.get("api").await.unwrap().metadata.uid.unwrap();
    wait("orphan adopted, one pod created", || async {
        let live = live_pods(&client, "app=api").await;
        let adopted = pods
            .get("orphan")
            .await
            .ok()?
            .metadata
            .owner_references?
            .iter()
            .any(|r| r.uid == uid && r.controller == Some(true));
        (adopted && live.len() == 2).then_some(())
    })
    .await;

    // Relabelled: released (reference removed) and replaced.
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    wait("released and replaced", || async {
        let released = pods
            .get("orphan")
            .await
            .ok()?
            .metadata
            .owner_references
            .is_none_or(|r| r.is_empty());
        (released && live_pods(&client, "app=api").await.len() == 2).then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_replicaset_gets_exactly_its_replicas() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset"]);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &rs_body("big", 60, 0))
        .await
        .unwrap();
    wait("60 replicas in status", || async {
        (sets.get("big").await.ok()?.status?.replicas == 60).then_some(())
    })
    .await;
    // Expectations kept every sync during the burst from creating more.
    assert_eq!(live_pods(&client, "app=big").await.len(), 60);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_waits_for_min_ready_seconds() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset"]);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &rs_body("slow", 1, 2))
        .await
        .unwrap();
    let pod = wait("a pod", || async {
        live_pods(&client, "app=slow").await.pop()
    })
    .await;
    ready_on(&client, pod.metadata.name.as_deref().unwrap(), "n1").await;
    wait("ready, not yet available", || async {
        let st = sets.get("slow").await.ok()?.status?;
        (st.ready_replicas == Some(1)).then_some(())
    })
    .await;
    assert_eq!(
        sets.get("slow")
            .await
            .unwrap()
            .status
            .unwrap()
            .available_replicas,
        Some(0)
    );
    wait("available after minReadySeconds", || async {
        (sets.get("slow").await.ok()?.status?.available_replicas == Some(1)).then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_runs_its_pods() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicationcontroller"]);
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), "default");
    let rc = json!({"metadata": {"name": "legacy"}, "spec": {"replicas": 2,
        "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    rcs.create(&PostParams::default(), &serde_json::from_value(rc).unwrap())
        .await
        .unwrap();
    let pods = wait("2 pods", || async {
        let pods = live_pods(&client, "app=legacy").await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    let r = &pods[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (r.api_version.as_str(), r.kind.as_str()),
        ("v1", "ReplicationController")
    );
    wait("status", || async {
        (rcs.get("legacy").await.ok()?.status?.replicas == 2).then_some(())
    })
    .await;
    stop(s).await;
}
