//! Unit tests of pod management with a pod control that records its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use parking_lot::Mutex;
use serde_json::json;

use super::{PodControl, manage_replicas, slow_start_batch};
use crate::expectations::Expectations;

#[derive(Default)]
struct FakeControl {
    created: AtomicUsize,
    /// Creations after this many fail.
    fail_after: Option<usize>,
    deleted: Mutex<Vec<String>>,
}

fn forbidden() -> kube::Error {
    kube::Error::Api(
        kube::core::Status::failure("exceeded quota", "Forbidden")
            .with_code(403)
            .boxed(),
    )
}

impl PodControl for FakeControl {
    async fn create(&self, mut pod: Pod, _owner: &ObjectReference) -> kube::Result<Pod> {
        let n = self.created.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.is_some_and(|f| n >= f) {
            return Err(forbidden());
        }
        pod.metadata.name = Some(format!(
            "{}{n}",
            pod.metadata.generate_name.clone().unwrap_or_default()
        ));
        Ok(pod)
    }
    async fn delete(&self, name: &str, _owner: &ObjectReference) -> kube::Result<()> {
        self.deleted.lock().push(name.to_string());
        Ok(())
    }
}

fn rs(replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap()
}

fn pod(name: &str, node: &str) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"nodeName": node, "containers": []},
        }))
        .unwrap(),
    )
}

#[tokio::test]
async fn creates_the_missing_pods_and_expects_them() {
    let control = FakeControl::default();
    let exp = Expectations::default();
    manage_replicas(&control, &exp, &rs(3), &[pod("a", "n1")], &[], 500)
        .await
        .unwrap();
    assert_eq!(control.created.load(Ordering::SeqCst), 2);
    assert!(!exp.satisfied("ns/web"));
    exp.creation_observed("ns/web");
    exp.creation_observed("ns/web");
    assert!(exp.satisfied("ns/web"));
}

#[tokio::test]
async fn creations_are_capped_by_the_burst() {
    let control = FakeControl::default();
    let exp = Expectations::default();
    manage_replicas(&control, &exp, &rs(10), &[], &[], 4)
        .await
        .unwrap();
    assert_eq!(control.created.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_failing_creation_stops_the_slow_start_and_lowers_expectations() {
    let control = FakeControl {
        fail_after: Some(3),
        ..Default::default()
    };
    let exp = Expectations::default();
    let err = manage_replicas(&control, &exp, &rs(100), &[], &[], 500)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exceeded quota"), "{err}");
    // Batches of 1 and 2 succeed, the batch of 4 has one failure and stops there.
    assert_eq!(control.created.load(Ordering::SeqCst), 7);
    for _ in 0..3 {
        exp.creation_observed("ns/web");
    }
    assert!(
        exp.satisfied("ns/web"),
        "only the 3 successes stay expected"
    );
}

#[tokio::test]
async fn deletes_the_surplus_pods_preferring_unscheduled_ones() {
    let control = FakeControl::default();
    let exp = Expectations::default();
    let pods = [pod("scheduled", "n1"), pod("unscheduled", "")];
    manage_replicas(&control, &exp, &rs(1), &pods, &pods, 500)
        .await
        .unwrap();
    assert_eq!(*control.deleted.lock(), ["unscheduled"]);
    assert!(!exp.satisfied("ns/web"));
    exp.deletion_observed("ns/web", "ns/unscheduled");
    assert!(exp.satisfied("ns/web"));
}

#[tokio::test]
async fn slow_start_doubles_batches() {
    let calls = AtomicUsize::new(0);
    let (ok, err) = slow_start_batch(10, 1, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(true)
    })
    .await;
    assert_eq!((ok, err), (10, None));
    assert_eq!(calls.load(Ordering::SeqCst), 10);
}
