//! The node's pods: one watch over the pods bound to this node (field selector
//! spec.nodeName), and one worker task per pod that drives the runtime toward the
//! pod's spec and reports its status.

mod events;
mod image;
mod lifecycle;
mod probe;
mod security;
mod spec;
mod status;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use crate::{Config, Result, Runtime};

/// What a worker shares with the others.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub config: Arc<Config>,
    pub runtime: Runtime,
}

/// A worker's view of its pod: the latest object, or `None` once it left the API.
type PodFeed = watch::Sender<Option<Pod>>;

pub async fn run(client: kube::Client, config: Arc<Config>, runtime: Runtime) -> Result<()> {
    remove_leftovers(&runtime).await?;
    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", config.node_name);
    let ctx = Arc::new(Ctx {
        client,
        config,
        runtime,
    });
    let mut workers: HashMap<String, PodFeed> = HashMap::new();
    // Pods seen during a (re)list, so pods deleted while the watch was down end too.
    let mut listed: HashSet<String> = HashSet::new();
    let mut stream = watcher(pods, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(pod)) => feed(&ctx, &mut workers, pod),
            Ok(watcher::Event::InitApply(pod)) => {
                listed.insert(pod.metadata.uid.clone().unwrap_or_default());
                feed(&ctx, &mut workers, pod);
            }
            Ok(watcher::Event::Delete(pod)) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(w) = workers.remove(&uid) {
                    let _ = w.send(None);
                }
            }
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitDone) => {
                workers.retain(|uid, w| {
                    let keep = listed.contains(uid);
                    if !keep {
                        let _ = w.send(None);
                    }
                    keep
                });
            }
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
        }
    }
    Ok(())
}

/// Hands the pod to its worker, starting one for a pod not seen before.
fn feed(ctx: &Arc<Ctx>, workers: &mut HashMap<String, PodFeed>, pod: Pod) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(w) = workers.get(&uid) {
        // A worker that finished (pod deleted by us) just drops the update.
        let _ = w.send(Some(pod));
        return;
    }
    let (tx, rx) = watch::channel(Some(pod));
    workers.insert(uid, tx);
    tokio::spawn(worker::run(ctx.clone(), rx));
}

/// Removes sandboxes an earlier kubelet left (its containers outlive it). This kubelet
/// does not re-adopt them yet, and running a pod's sandbox twice would be worse than
/// restarting it: the workers start every pod afresh.
async fn remove_leftovers(runtime: &Runtime) -> Result<()> {
    let rt = &runtime.runtime;
    for pod in rt.list_pod_sandbox(None).await? {
        tracing::info!(id = %pod.id, name = ?pod.metadata.map(|m| m.name), "removing a sandbox left by an earlier run");
        for r in [
            rt.stop_pod_sandbox(&pod.id).await,
            rt.remove_pod_sandbox(&pod.id).await,
        ] {
            if let Err(e) = r
                && !e.is_not_found()
            {
                tracing::warn!(id = %pod.id, error = %e, "cannot remove a leftover sandbox");
            }
        }
    }
    Ok(())
}
