//! Helpers of the workload, garbage collector and namespace tests: a server with the
//! chosen controllers, and a stand-in kubelet the tests drive by hand.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::TestServer;
use tokio::task::JoinSet;

pub async fn server() -> (TestServer, kube::Client) {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let c = s.client();
    (s, c)
}

pub async fn stop(s: TestServer) {
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}

/// Polls `check` until it yields, or fails the test after 30 s.
pub async fn wait<T, F, Fut>(what: &str, check: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The named controllers, running until the returned set is dropped.
pub fn start(client: &kube::Client, names: &[&str]) -> JoinSet<()> {
    let opts = controllers::Options {
        controllers: names.iter().map(ToString::to_string).collect(),
        ..Default::default()
    };
    controllers::start(client.clone(), &opts)
}

/// Pods matching `selector` in `default` that are not being deleted.
pub async fn live_pods(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Binds the pod to `node` (pods on a node are deleted gracefully).
pub async fn bind(client: &kube::Client, name: &str, node: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}});
    let _: serde_json::Value = pods
        .create_subresource("binding", name, &PostParams::default(), &binding)
        .await
        .unwrap();
}

/// Marks the pod Running and Ready, as a kubelet would.
pub async fn make_ready(client: &kube::Client, name: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    // The pod may have been deleted meanwhile: that is fine.
    let _ = pods
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
}

/// Marks every live, not yet ready pod matching `selector` ready; how many.
pub async fn ready_all(client: &kube::Client, selector: &str) -> usize {
    let mut n = 0;
    for p in live_pods(client, selector).await {
        if !is_ready(&p) {
            make_ready(client, p.metadata.name.as_deref().unwrap()).await;
            n += 1;
        }
    }
    n
}

/// (reason, message) of the events about the object called `name`.
pub async fn events_for(client: &kube::Client, name: &str) -> Vec<(String, String)> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}
