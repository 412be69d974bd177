//! Static pods: the manifest directory, re-read every [`RESCAN`], decides which run;
//! each gets a worker like an API pod's, and a mirror pod in the API that shows it.
//!
//! As upstream: an edited file is a new pod (a new UID) that starts once the old one
//! has stopped (two static pods of one full name never run at once); a removed file
//! stops its pod within the grace period and deletes its mirror; a mirror pod that is
//! deleted, or no longer matches its static pod, is deleted at once and made anew at
//! the next scan, while the static pod keeps running; mirror pods whose static pod is
//! gone are deleted.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::adopt::Found;
use super::manifest::{self, full_name};
use super::mirror::{self, Mirror};
use super::{Ctx, Desired, Source, worker};

/// How often the manifests are read (upstream's file check: 20 s).
pub const RESCAN: Duration = Duration::from_secs(2);

struct Running {
    uid: String,
    /// The pod as last given to the worker.
    pod: Pod,
    /// The mirror UID the worker was last told.
    mirror: Option<String>,
    tx: watch::Sender<Option<Desired>>,
    task: JoinHandle<()>,
}

impl Running {
    fn tell(&mut self, pod: Pod, mirror: Option<String>) {
        if self.pod == pod && self.mirror == mirror {
            return;
        }
        self.pod = pod.clone();
        self.mirror = mirror.clone();
        let _ = self.tx.send(Some(Desired {
            pod,
            source: Source::File { mirror },
        }));
    }

    /// Asks the worker to stop the pod as if it were deleted (the pod's grace
    /// period); the task ends once it has.
    fn stop(self) -> JoinHandle<()> {
        let mut pod = self.pod;
        pod.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        pod.metadata.deletion_grace_period_seconds = pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds);
        let _ = self.tx.send(Some(Desired {
            pod,
            source: Source::File {
                mirror: self.mirror,
            },
        }));
        self.task
    }
}

#[derive(Default)]
pub struct Statics {
    path: Option<PathBuf>,
    /// The static pods the manifests give now, by full name.
    pods: BTreeMap<String, Pod>,
    /// When each static pod UID was first seen (the config.seen annotation).
    seen: HashMap<String, String>,
    running: HashMap<String, Running>,
    /// Workers still stopping a pod whose file went away or changed, by full name.
    stopping: HashMap<String, JoinHandle<()>>,
    /// This node's mirror pods in the API, by full name; `None` until the API's
    /// first list, before which no mirror is created or deleted.
    mirrors: Option<HashMap<String, Mirror>>,
    /// Mirror pods seen during a relist of the API's pods.
    relisted: HashMap<String, Mirror>,
}

impl Statics {
    pub fn new(path: Option<PathBuf>) -> Self {
        if let Some(p) = &path
            && let Err(e) = std::fs::create_dir_all(p)
            && !p.is_file()
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot create the pod manifest directory");
        }
        Statics {
            path,
            ..Default::default()
        }
    }

    /// Re-reads the manifests; starts, restarts and stops static pods to match, then
    /// brings their mirror pods in line. `found` is what an earlier kubelet left.
    pub async fn sync(&mut self, ctx: &Arc<Ctx>, found: &mut Option<HashMap<String, Found>>) {
        let Some(path) = &self.path else {
            return;
        };
        let pods = match manifest::read_all(path, &ctx.config.node_name) {
            Ok(pods) => pods,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the pod manifests; keeping the static pods as they are");
                return;
            }
        };
        let mut now = BTreeMap::new();
        for mut pod in pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let seen = self.seen.entry(uid).or_insert_with(manifest::seen_now);
            let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(manifest::SEEN.into(), seen.clone());
            now.insert(full_name(&pod), pod);
        }
        self.seen
            .retain(|uid, _| now.values().any(|p| p.metadata.uid.as_ref() == Some(uid)));
        let uid_of = |p: &Pod| p.metadata.uid.clone().unwrap_or_default();
        let gone: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| now.get(*name).map(uid_of) != Some(r.uid.clone()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            let r = self.running.remove(&name).expect("listed");
            tracing::info!(pod = %name, uid = %r.uid, "static pod removed or changed; stopping it");
            self.stopping.insert(name, r.stop());
        }
        self.stopping.retain(|_, task| !task.is_finished());
        for (name, pod) in &now {
            if self.running.contains_key(name) || self.stopping.contains_key(name) {
                continue;
            }
            let uid = uid_of(pod);
            let adopted = found.as_mut().and_then(|f| f.remove(&uid));
            let mirror = self.mirror_uid(name, pod);
            let desired = Desired {
                pod: pod.clone(),
                source: Source::File {
                    mirror: mirror.clone(),
                },
            };
            let (tx, rx) = watch::channel(Some(desired));
            let task = tokio::spawn(worker::run(ctx.clone(), rx, adopted));
            tracing::info!(pod = %name, %uid, "running a static pod");
            let pod = pod.clone();
            self.running.insert(
                name.clone(),
                Running {
                    uid,
                    pod,
                    mirror,
                    tx,
                    task,
                },
            );
        }
        self.pods = now;
        self.sync_mirrors(ctx).await;
    }

    /// The UID of the mirror pod that mirrors `pod` now, if any.
    fn mirror_uid(&self, name: &str, pod: &Pod) -> Option<String> {
        let m = self.mirrors.as_ref()?.get(name)?;
        m.matches(pod).then(|| m.uid.clone())
    }

    /// Every static pod's mirror, and the mirrors of static pods that are gone.
    async fn sync_mirrors(&mut self, ctx: &Ctx) {
        let Some(mirrors) = &self.mirrors else {
            return;
        };
        let mut names: Vec<String> = mirrors.keys().cloned().collect();
        names.extend(self.pods.keys().cloned());
        names.sort();
        names.dedup();
        for name in names {
            self.sync_mirror(ctx, &name, true).await;
        }
    }

    /// Makes the API's mirror pod of `name` match the static pod (or go, without one),
    /// and tells the worker where its status goes. Without `create`, a missing mirror
    /// waits for the next scan: a mirror a user deleted is gone for a moment, so
    /// `kubectl delete`'s wait (get, then list and watch by name) sees it go instead
    /// of listing its successor and waiting for a deletion it missed.
    async fn sync_mirror(&mut self, ctx: &Ctx, name: &str, create: bool) {
        let Some(mirrors) = self.mirrors.as_mut() else {
            return;
        };
        let pod = self.pods.get(name);
        let current = mirrors.get(name).cloned();
        if let Some(m) = &current
            && !pod.is_some_and(|p| m.matches(p))
        {
            let (ns, short) = name.split_once('/').unwrap_or(("default", name));
            match mirror::delete(&ctx.client, ns, short, &m.uid).await {
                Ok(()) => {
                    tracing::info!(pod = %name, uid = %m.uid, "deleted a mirror pod");
                    mirrors.remove(name);
                }
                Err(e) => tracing::warn!(pod = %name, error = %e, "cannot delete a mirror pod"),
            }
        }
        if let Some(pod) = pod
            && create
            && !mirrors.contains_key(name)
        {
            match mirror::create(&ctx.client, pod, &ctx.config.node_name).await {
                Ok(created) => {
                    if let Some(m) = Mirror::of(&created) {
                        tracing::info!(pod = %name, uid = %m.uid, "created a mirror pod");
                        mirrors.insert(name.to_string(), m);
                    }
                }
                // A pod of that name the API has and we do not know as a mirror yet:
                // the watch will tell; retried on the next scan.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    tracing::debug!(pod = %name, "a pod of the mirror's name exists");
                }
                Err(e) => tracing::warn!(pod = %name, error = %e, "cannot create a mirror pod"),
            }
        }
        if let Some(pod) = pod.cloned() {
            let uid = self.mirror_uid(name, &pod);
            if let Some(r) = self.running.get_mut(name) {
                r.tell(pod, uid);
            }
        }
    }

    /// A mirror pod was added or changed in the API.
    pub async fn mirror_changed(&mut self, ctx: &Ctx, pod: &Pod) {
        let (Some(m), Some(mirrors)) = (Mirror::of(pod), self.mirrors.as_mut()) else {
            return;
        };
        let name = full_name(pod);
        if mirrors.get(&name) == Some(&m) {
            return;
        }
        mirrors.insert(name.clone(), m);
        self.sync_mirror(ctx, &name, false).await;
    }

    /// A mirror pod left the API.
    pub async fn mirror_deleted(&mut self, ctx: &Ctx, pod: &Pod) {
        let Some(mirrors) = self.mirrors.as_mut() else {
            return;
        };
        let name = full_name(pod);
        if mirrors.get(&name).map(|m| &m.uid) == pod.metadata.uid.as_ref() {
            mirrors.remove(&name);
            self.sync_mirror(ctx, &name, false).await;
        }
    }

    /// The API's pods are being listed again.
    pub fn relist_started(&mut self) {
        self.relisted.clear();
    }

    pub fn relisted(&mut self, pod: &Pod) {
        if let Some(m) = Mirror::of(pod) {
            self.relisted.insert(full_name(pod), m);
        }
    }

    /// The list is complete: it is the set of mirror pods now.
    pub async fn relist_done(&mut self, ctx: &Ctx) {
        self.mirrors = Some(std::mem::take(&mut self.relisted));
        self.sync_mirrors(ctx).await;
    }
}
