//! The scheduler's loops: informers feeding the cache and queue, the scheduling loop,
//! and bindings in the background.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use controllers::events::{EventType, Recorder, reference};

use crate::algorithm::Profile;
use crate::cache::{Cache, PodInfo, pod_key};
use crate::queue::Queue;
use crate::{DEFAULT_SCHEDULER_NAME, preemption};

#[derive(Clone, Debug)]
pub struct Options {
    /// Bindings in flight at once.
    pub bind_concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bind_concurrency: 128,
        }
    }
}

struct Shared {
    client: kube::Client,
    cache: Mutex<Cache>,
    queue: Queue,
    profile: Profile,
    recorder: Recorder,
    binds: Semaphore,
}

fn is_ours(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|n| n.is_empty() || n == DEFAULT_SCHEDULER_NAME)
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// Schedules while `leading` is true; runs until dropped.
pub async fn run(client: kube::Client, opts: Options, mut leading: watch::Receiver<bool>) {
    let shared = Arc::new(Shared {
        recorder: Recorder::new(client.clone(), DEFAULT_SCHEDULER_NAME),
        client,
        cache: Mutex::new(Cache::default()),
        queue: Queue::default(),
        profile: Profile::default(),
        binds: Semaphore::new(opts.bind_concurrency.max(1)),
    });
    tokio::spawn(watch_nodes(shared.clone()));
    tokio::spawn(watch_pods(shared.clone()));
    let mut start = 0usize;
    loop {
        while !*leading.borrow() {
            if leading.changed().await.is_err() {
                return;
            }
        }
        let queued = shared.queue.pop().await;
        schedule_one(&shared, queued.info, &mut start).await;
    }
}

async fn watch_nodes(shared: Arc<Shared>) {
    let api: Api<Node> = Api::all(shared.client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => {
                shared.cache.lock().upsert_node(Arc::new(n));
                shared.queue.move_all();
            }
            Ok(watcher::Event::Delete(n)) => {
                shared
                    .cache
                    .lock()
                    .remove_node(n.metadata.name.as_deref().unwrap_or_default());
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "node watch error"),
        }
    }
}

async fn watch_pods(shared: Arc<Shared>) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => on_pod(&shared, p),
            Ok(watcher::Event::Delete(p)) => {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                shared.cache.lock().unplace(&uid);
                shared.queue.remove(&pod_key(&p));
                shared.queue.move_all();
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "pod watch error"),
        }
    }
}

fn on_pod(shared: &Shared, pod: Pod) {
    let key = pod_key(&pod);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(node) = node_of(&pod).map(str::to_string) {
        shared.queue.remove(&key);
        let mut cache = shared.cache.lock();
        if finished(&pod) {
            cache.unplace(&uid);
            drop(cache);
            shared.queue.move_all();
        } else {
            cache.place(PodInfo::new(Arc::new(pod)), &node);
        }
        return;
    }
    if !is_ours(&pod) || finished(&pod) || pod.metadata.deletion_timestamp.is_some() {
        shared.queue.remove(&key);
        return;
    }
    if shared.cache.lock().is_placed(&uid) {
        // Assumed and being bound: the watch has not caught up yet.
        return;
    }
    shared.queue.add(PodInfo::new(Arc::new(pod)));
}

async fn schedule_one(shared: &Arc<Shared>, pod: PodInfo, start: &mut usize) {
    let decision = {
        let cache = shared.cache.lock();
        if cache.is_placed(&pod.uid) {
            return;
        }
        shared.profile.schedule(&cache, &pod, start)
    };
    match decision {
        Ok(node) => {
            shared.cache.lock().place(pod.clone(), &node);
            let permit_source = shared.clone();
            tokio::spawn(async move {
                let _permit = permit_source.binds.acquire().await.expect("semaphore open");
                bind(&permit_source, pod, &node).await;
            });
        }
        Err(mut fit) => {
            let plan = {
                let cache = shared.cache.lock();
                preemption::find(&shared.profile, &cache, &pod, &fit)
            };
            match plan {
                Ok(plan) => preempt(shared, &pod, plan).await,
                Err(msg) => fit.post_filter_msg = Some(msg),
            }
            let message = fit.message();
            shared.queue.unschedulable(&pod.key);
            report_unschedulable(shared, &pod, &message).await;
        }
    }
}

async fn bind(shared: &Shared, pod: PodInfo, node: &str) {
    let ns = pod.namespace().to_string();
    let name = pod.pod.metadata.name.clone().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.into()),
            api_version: Some("v1".into()),
            ..Default::default()
        },
    };
    let data = serde_json::to_vec(&binding).expect("binding serialises");
    let req = http_post(
        &format!("/api/v1/namespaces/{ns}/pods/{name}/binding"),
        data,
    );
    match shared.client.request_text(req).await {
        Ok(_) => {
            let msg = format!("Successfully assigned {ns}/{name} to {node}");
            shared
                .recorder
                .record(
                    &reference(pod.pod.as_ref()),
                    EventType::Normal,
                    "Scheduled",
                    &msg,
                )
                .await;
        }
        Err(e) => {
            tracing::debug!(pod = %pod.key, error = %e, "binding failed");
            shared.cache.lock().unplace(&pod.uid);
            let gone = matches!(&e, kube::Error::Api(s) if s.code == 404);
            let already = matches!(&e, kube::Error::Api(s) if s.code == 409);
            if !gone && !already {
                shared.queue.retry(pod);
            }
        }
    }
}

fn http_post(path: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid request")
}

async fn preempt(shared: &Shared, pod: &PodInfo, plan: preemption::Plan) {
    for victim in &plan.victims {
        let api: Api<Pod> = Api::namespaced(shared.client.clone(), victim.namespace());
        let name = victim.pod.metadata.name.clone().unwrap_or_default();
        let msg = format!("Preempted by pod {} on node {}", pod.uid, plan.node);
        shared
            .recorder
            .record(
                &reference(victim.pod.as_ref()),
                EventType::Normal,
                "Preempted",
                &msg,
            )
            .await;
        if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
            tracing::debug!(victim = %victim.key, error = %e, "failed to delete a preemption victim");
        }
    }
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), pod.namespace());
    let name = pod.pod.metadata.name.clone().unwrap_or_default();
    let patch = json!({"status": {"nominatedNodeName": plan.node}});
    let _ = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

/// PodScheduled=False with the reason, and a FailedScheduling event, as upstream.
async fn report_unschedulable(shared: &Shared, pod: &PodInfo, message: &str) {
    let current = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.message.clone());
    shared
        .recorder
        .record(
            &reference(pod.pod.as_ref()),
            EventType::Warning,
            "FailedScheduling",
            message,
        )
        .await;
    if current.as_deref() == Some(message) {
        return;
    }
    let api: Api<Pod> = Api::namespaced(shared.client.clone(), pod.namespace());
    let name = pod.pod.metadata.name.clone().unwrap_or_default();
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let patch = json!({"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
        "lastProbeTime": null, "lastTransitionTime": now,
    }]}});
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::debug!(pod = %pod.key, error = %e, "failed to set PodScheduled=False");
    }
}
