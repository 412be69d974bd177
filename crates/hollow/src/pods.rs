//! The pod side of the hollow kubelets: one watch over every scheduled pod, and for
//! pods on our nodes the transitions a kubelet would report.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::{Error, Options, node::node_name};

/// What we have started doing for a pod (by uid), so repeated watch events don't
/// repeat the work.
#[derive(Default)]
struct Seen {
    started: HashSet<String>,
    finishing: HashSet<String>,
    deleting: HashSet<String>,
}

pub(crate) async fn run(
    client: kube::Client,
    opts: Arc<Options>,
    limiter: Arc<Semaphore>,
) -> Result<(), Error> {
    let ours: HashMap<String, usize> = (0..opts.count)
        .map(|i| (node_name(&opts.prefix, i), i))
        .collect();
    let ours = Arc::new(ours);
    let pods: Api<Pod> = Api::all(client.clone());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ip_counter = Arc::new(std::sync::atomic::AtomicU32::new(1));
    let cfg = watcher::Config::default().fields("spec.nodeName!=");
    let mut stream = watcher(pods, cfg).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let pods = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => vec![p],
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "pod watch error; the watcher retries");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
        };
        for pod in pods {
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                continue;
            };
            let Some(&index) = ours.get(&node) else {
                continue;
            };
            let (client, opts, limiter, seen) =
                (client.clone(), opts.clone(), limiter.clone(), seen.clone());
            let ip = pod_ip(
                index,
                ip_counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            );
            tokio::spawn(async move {
                if let Err(e) = handle(&client, &opts, &limiter, &seen, pod, index, ip).await {
                    tracing::debug!(error = %e, "hollow pod update failed");
                }
            });
        }
    }
    Ok(())
}

fn pod_ip(node_index: usize, n: u32) -> String {
    format!(
        "10.{}.{}.{}",
        100 + (node_index / 256) % 50,
        node_index % 256,
        n % 253 + 1
    )
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

async fn handle(
    client: &kube::Client,
    opts: &Options,
    limiter: &Semaphore,
    seen: &Mutex<Seen>,
    pod: Pod,
    node_index: usize,
    ip: String,
) -> Result<(), Error> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();

    if pod.metadata.deletion_timestamp.is_some() {
        if !seen.lock().await.deleting.insert(uid.clone()) {
            return Ok(());
        }
        // Containers "stop" at once; the kubelet then deletes with grace 0.
        let _permit = limiter.acquire().await.expect("semaphore open");
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        return match api.delete(&name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        };
    }

    let restart = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    if phase.is_empty() || phase == "Pending" {
        if !seen.lock().await.started.insert(uid.clone()) {
            return Ok(());
        }
        tokio::time::sleep(opts.startup_delay).await;
        let _permit = limiter.acquire().await.expect("semaphore open");
        let status = running_status(&pod, node_index, &ip);
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await?;
        if restart == "Always" {
            return Ok(());
        }
    } else if phase != "Running" || restart == "Always" {
        return Ok(());
    }
    if !seen.lock().await.finishing.insert(uid) {
        return Ok(());
    }
    tokio::time::sleep(opts.job_runtime).await;
    let _permit = limiter.acquire().await.expect("semaphore open");
    let status = finished_status(&pod);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;
    Ok(())
}

fn containers(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn condition(kind: &str, status: &str, at: &str) -> Value {
    json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": at})
}

fn running_status(pod: &Pod, node_index: usize, ip: &str) -> Value {
    let at = now();
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("hollow://{image}"),
                "containerID": format!("hollow://{name}"), "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": at}},
            })
        })
        .collect();
    json!({
        "phase": "Running",
        "hostIP": crate::node::node_ip(node_index),
        "hostIPs": [{"ip": crate::node::node_ip(node_index)}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": at,
        "conditions": [
            condition("PodReadyToStartContainers", "True", &at),
            condition("Initialized", "True", &at),
            condition("Ready", "True", &at),
            condition("ContainersReady", "True", &at),
            condition("PodScheduled", "True", &at),
        ],
        "containerStatuses": statuses,
    })
}

fn finished_status(pod: &Pod) -> Value {
    let at = now();
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("hollow://{image}"),
                "containerID": format!("hollow://{name}"), "ready": false, "started": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": at, "finishedAt": at}},
            })
        })
        .collect();
    json!({
        "phase": "Succeeded",
        "conditions": [
            condition("PodReadyToStartContainers", "False", &at),
            condition("Initialized", "True", &at),
            condition("Ready", "False", &at),
            condition("ContainersReady", "False", &at),
            condition("PodScheduled", "True", &at),
        ],
        "containerStatuses": statuses,
    })
}
