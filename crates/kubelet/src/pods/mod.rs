//! The node's pods: the API's pods bound to this node (one watch, field selector
//! spec.nodeName) and the static pods of the manifest directory (`statics`), each
//! run by a worker task that drives the runtime toward the pod's spec and reports its
//! status. Mirror pods in the API only show static pods: they are never run.
//!
//! At start, what an earlier kubelet left in the runtime is grouped by pod (`adopt`)
//! and each pod's worker takes over its own; what no pod claims once the API's first
//! list is in (pods deleted while the kubelet was down) is removed.

mod adopt;
mod events;
mod image;
mod lifecycle;
mod manifest;
mod mirror;
mod probe;
mod security;
mod spec;
mod statics;
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
use adopt::Found;

/// What a worker shares with the others.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub config: Arc<Config>,
    pub runtime: Runtime,
}

/// What a worker is told about its pod.
#[derive(Clone, Debug)]
pub(crate) struct Desired {
    pub pod: Pod,
    pub source: Source,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A pod of the API: its status goes to it, and the worker deletes it at the end.
    Api,
    /// A static pod: its status goes to its mirror pod (once there is one).
    File { mirror: Option<String> },
}

/// A worker's view of its pod: the latest, or `None` once it left the API.
type PodFeed = watch::Sender<Option<Desired>>;

struct Pods {
    ctx: Arc<Ctx>,
    /// The API pods' workers, by UID.
    workers: HashMap<String, PodFeed>,
    /// Pods seen during a (re)list, so pods deleted while the watch was down end too.
    listed: HashSet<String>,
    /// What an earlier kubelet left, by pod UID, until the API's first list is in.
    found: Option<HashMap<String, Found>>,
    statics: statics::Statics,
}

pub async fn run(client: kube::Client, config: Arc<Config>, runtime: Runtime) -> Result<()> {
    let found = adopt::list(&runtime).await?;
    if !found.is_empty() {
        tracing::info!(
            pods = found.len(),
            "found pods an earlier kubelet left in the runtime"
        );
    }
    let api: Api<Pod> = Api::all(client.clone());
    let selector = format!("spec.nodeName={}", config.node_name);
    let manifests = config.pod_manifest_path.clone();
    let mut pods = Pods {
        ctx: Arc::new(Ctx {
            client,
            config,
            runtime,
        }),
        workers: HashMap::new(),
        listed: HashSet::new(),
        found: Some(found),
        statics: statics::Statics::new(manifests),
    };
    // Static pods first: they need no API, and they claim what they left before
    // the API's list decides what is orphaned.
    pods.statics.sync(&pods.ctx, &mut pods.found).await;
    let mut stream = watcher(api, watcher::Config::default().fields(&selector))
        .default_backoff()
        .boxed();
    let mut rescan = tokio::time::interval(statics::RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(event) => pods.on_event(event).await,
                None => break,
            },
            _ = rescan.tick() => pods.statics.sync(&pods.ctx, &mut pods.found).await,
        }
    }
    Ok(())
}

impl Pods {
    async fn on_event(&mut self, event: Result<watcher::Event<Pod>, watcher::Error>) {
        let ctx = self.ctx.clone();
        match event {
            Ok(watcher::Event::Apply(pod)) if mirror::is_mirror(&pod) => {
                self.statics.mirror_changed(&ctx, &pod).await;
            }
            Ok(watcher::Event::Apply(pod)) => self.feed(pod),
            Ok(watcher::Event::InitApply(pod)) if mirror::is_mirror(&pod) => {
                self.statics.relisted(&pod);
            }
            Ok(watcher::Event::InitApply(pod)) => {
                self.listed
                    .insert(pod.metadata.uid.clone().unwrap_or_default());
                self.feed(pod);
            }
            Ok(watcher::Event::Delete(pod)) if mirror::is_mirror(&pod) => {
                self.statics.mirror_deleted(&ctx, &pod).await;
            }
            Ok(watcher::Event::Delete(pod)) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(w) = self.workers.remove(&uid) {
                    let _ = w.send(None);
                }
            }
            Ok(watcher::Event::Init) => {
                self.listed.clear();
                self.statics.relist_started();
            }
            Ok(watcher::Event::InitDone) => {
                let listed = &self.listed;
                self.workers.retain(|uid, w| {
                    let keep = listed.contains(uid);
                    if !keep {
                        let _ = w.send(None);
                    }
                    keep
                });
                self.statics.relist_done(&ctx).await;
                if let Some(orphans) = self.found.take()
                    && !orphans.is_empty()
                {
                    let (runtime, config) = (ctx.runtime.clone(), ctx.config.clone());
                    tokio::spawn(adopt::remove_orphans(runtime, config, orphans));
                }
            }
            Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
        }
    }

    /// Hands the pod to its worker, starting one for a pod not seen before.
    fn feed(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let desired = Desired {
            pod,
            source: Source::Api,
        };
        if let Some(w) = self.workers.get(&uid) {
            // A worker that finished (pod deleted by us) just drops the update.
            let _ = w.send(Some(desired));
            return;
        }
        let adopted = self.found.as_mut().and_then(|f| f.remove(&uid));
        let (tx, rx) = watch::channel(Some(desired));
        self.workers.insert(uid, tx);
        tokio::spawn(worker::run(self.ctx.clone(), rx, adopted));
    }
}
