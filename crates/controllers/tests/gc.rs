//! The garbage collector against the real API server: background, foreground and
//! orphan deletion, several owners, custom resources as owners.

mod common;

use std::time::Duration;

use common::{live_pods, server, stop, wait};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::task::JoinSet;

fn start(client: &kube::Client, names: &[&str]) -> JoinSet<()> {
    let opts = controllers::Options {
        controllers: names.iter().map(ToString::to_string).collect(),
        discovery_resync_period: Duration::from_millis(500),
        ..Default::default()
    };
    controllers::start(client.clone(), &opts)
}

fn rs(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .unwrap()
}

/// A ConfigMap owned by the objects `owners` (kind, name, uid, blockOwnerDeletion).
fn owned_cm(name: &str, owners: &[(&str, &str, &str, bool)], finalizers: &[&str]) -> ConfigMap {
    let refs: Vec<serde_json::Value> = owners
        .iter()
        .map(|(kind, n, uid, block)| {
            let api_version = if *kind == "Widget" { "example.com/v1" } else { "v1" };
            json!({"apiVersion": api_version, "kind": kind, "name": n, "uid": uid, "blockOwnerDeletion": block})
        })
        .collect();
    serde_json::from_value(
        json!({"metadata": {"name": name, "ownerReferences": refs, "finalizers": finalizers}}),
    )
    .unwrap()
}

async fn create_cm(api: &Api<ConfigMap>, cm: &ConfigMap) -> String {
    api.create(&PostParams::default(), cm)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_removes_dependents_and_orphan_keeps_them() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset", "garbagecollector"]);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &rs("bg", 2))
        .await
        .unwrap();
    sets.create(&PostParams::default(), &rs("keep", 2))
        .await
        .unwrap();
    wait("pods", || async {
        (live_pods(&client, "app=bg").await.len() == 2
            && live_pods(&client, "app=keep").await.len() == 2)
            .then_some(())
    })
    .await;

    s.ok(&["delete", "replicaset", "bg"]);
    wait("pods of the deleted set collected", || async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        pods.list(&ListParams::default().labels("app=bg"))
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;

    s.ok(&["delete", "replicaset", "keep", "--cascade=orphan"]);
    wait("set gone, pods orphaned", || async {
        let pods = live_pods(&client, "app=keep").await;
        let orphaned = pods.iter().all(|p| {
            p.metadata
                .owner_references
                .as_ref()
                .is_none_or(|r| r.is_empty())
        });
        (sets.get_opt("keep").await.ok()?.is_none() && pods.len() == 2 && orphaned).then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["garbagecollector"]);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = create_cm(&cms, &owned_cm("owner", &[], &[])).await;
    create_cm(
        &cms,
        &owned_cm(
            "held",
            &[("ConfigMap", "owner", &owner, true)],
            &["example.com/hold"],
        ),
    )
    .await;
    create_cm(
        &cms,
        &owned_cm("free", &[("ConfigMap", "owner", &owner, false)], &[]),
    )
    .await;

    cms.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    wait("the blocking dependent being deleted", || async {
        cms.get("held")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    let o = cms.get("owner").await.unwrap();
    assert!(
        o.metadata.deletion_timestamp.is_some(),
        "owner waits for its dependent"
    );
    assert_eq!(
        o.metadata.finalizers.unwrap_or_default(),
        ["foregroundDeletion"]
    );

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait("owner and all dependents gone", || async {
        (gone(&cms, "owner").await && gone(&cms, "held").await && gone(&cms, "free").await)
            .then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_with_a_remaining_owner_survives() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["garbagecollector"]);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = create_cm(&cms, &owned_cm("a", &[], &[])).await;
    let b = create_cm(&cms, &owned_cm("b", &[], &[])).await;
    create_cm(
        &cms,
        &owned_cm(
            "shared",
            &[("ConfigMap", "a", &a, false), ("ConfigMap", "b", &b, false)],
            &[],
        ),
    )
    .await;
    // An owner that never existed.
    create_cm(
        &cms,
        &owned_cm(
            "stray",
            &[("ConfigMap", "ghost", "no-such-uid", false)],
            &[],
        ),
    )
    .await;
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    wait("the reference to the deleted owner removed", || async {
        let refs = cms.get("shared").await.ok()?.metadata.owner_references?;
        (refs.len() == 1 && refs[0].uid == b).then_some(())
    })
    .await;
    wait("the stray dependent collected", || async {
        gone(&cms, "stray").await.then_some(())
    })
    .await;
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    wait("the last owner gone, the dependent too", || async {
        gone(&cms, "shared").await.then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_own_dependents() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["garbagecollector"]);
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;
    let out = s.stdin(&["apply", "-f", "-"], crd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait("the CRD served", || async {
        s.kubectl(&["get", "widgets"])
            .status
            .success()
            .then_some(())
    })
    .await;
    let out = s.stdin(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid = s.ok(&["get", "widget", "w1", "-o", "jsonpath={.metadata.uid}"]);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(
        &cms,
        &owned_cm("widget-config", &[("Widget", "w1", &uid, true)], &[]),
    )
    .await;
    s.ok(&["delete", "widget", "w1"]);
    wait("the widget's dependent collected", || async {
        gone(&cms, "widget-config").await.then_some(())
    })
    .await;
    stop(s).await;
}
