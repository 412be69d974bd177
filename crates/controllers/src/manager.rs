//! The controller manager: starts the enabled controllers over shared informers while
//! this process holds the leader lease, stops them when it loses it, and reports its
//! health.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Options;
use crate::deployment::DeploymentController;
use crate::replicaset::ReplicaController;
use crate::runtime::Informer;

/// Every controller name `Options::controllers` may enable (`"*"` enables all,
/// `"-name"` disables one), as upstream's `--controllers` flag.
pub const CONTROLLERS: &[&str] = &[
    "replicaset",
    "replicationcontroller",
    "deployment",
    "garbagecollector",
    "namespace",
    "daemonset",
    "statefulset",
    "job",
    "cronjob",
    "endpoints",
    "serviceaccount",
    "nodeipam",
    "nodelifecycle",
    "podgc",
    "servicelb",
    "clusterrole-aggregation",
];

/// Whether `name` is enabled by the `--controllers` style list.
pub fn enabled(list: &[String], name: &str) -> bool {
    if list.iter().any(|c| c.strip_prefix('-') == Some(name)) {
        return false;
    }
    list.iter().any(|c| c == name || c == "*")
}

/// Informers shared by the controllers: one watch per resource type.
#[derive(Clone, Default)]
pub struct SharedInformers {
    pub pods: Informer<Pod>,
    pub replicasets: Informer<ReplicaSet>,
    pub replicationcontrollers: Informer<ReplicationController>,
    pub deployments: Informer<Deployment>,
}

fn watch_all<K>(client: &kube::Client, informer: &Informer<K>, tasks: &mut JoinSet<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    tasks.spawn(informer.clone().run(stream));
}

/// The health of the controller manager, as `componentstatuses` shows it.
pub type HealthReport = Arc<dyn Fn(Result<(), String>) + Send + Sync>;

/// Starts the enabled controllers as tasks of the returned set; dropping the set
/// stops them all.
pub fn start(client: kube::Client, opts: &Options) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    let on = |name: &str| enabled(&opts.controllers, name);
    let informers = SharedInformers::default();
    let workers = opts.concurrent_syncs.max(1);
    let mut needs_pods = false;
    let mut needs_replicasets = false;
    if on("replicaset") {
        needs_pods = true;
        needs_replicasets = true;
        let c = ReplicaController::new(
            client.clone(),
            informers.replicasets.clone(),
            informers.pods.clone(),
        );
        tasks.spawn(c.run(workers));
    }
    if on("replicationcontroller") {
        needs_pods = true;
        watch_all(&client, &informers.replicationcontrollers, &mut tasks);
        let c = ReplicaController::new(
            client.clone(),
            informers.replicationcontrollers.clone(),
            informers.pods.clone(),
        );
        tasks.spawn(c.run(workers));
    }
    if on("deployment") {
        needs_pods = true;
        needs_replicasets = true;
        watch_all(&client, &informers.deployments, &mut tasks);
        let c = DeploymentController::new(
            client.clone(),
            informers.deployments.clone(),
            informers.replicasets.clone(),
            informers.pods.clone(),
        );
        tasks.spawn(c.run(workers));
    }
    if on("garbagecollector") {
        let gc = crate::garbagecollector::GarbageCollector::new(client.clone());
        tasks.spawn(gc.run(workers * 4, opts.discovery_resync_period));
    }
    if on("namespace") {
        tasks.spawn(crate::namespace::run(client.clone(), workers));
    }
    if needs_replicasets {
        watch_all(&client, &informers.replicasets, &mut tasks);
    }
    if needs_pods {
        watch_all(&client, &informers.pods, &mut tasks);
    }
    if on("daemonset") {
        tasks.spawn(crate::daemonset::run(client.clone()));
    }
    if on("statefulset") {
        tasks.spawn(crate::statefulset::run(client.clone()));
    }
    if on("job") {
        tasks.spawn(crate::job::run(client.clone()));
    }
    if on("cronjob") {
        tasks.spawn(crate::cronjob::run(client.clone()));
    }
    if on("endpoints") {
        tasks.spawn(crate::endpoints::run(client.clone()));
    }
    if on("serviceaccount") {
        tasks.spawn(crate::serviceaccount::run(
            client.clone(),
            opts.root_ca_pem.clone(),
        ));
    }
    if on("nodeipam") {
        match opts.cluster_cidr.parse() {
            Ok(cidr) => {
                tasks.spawn(crate::node_ipam::run(
                    client.clone(),
                    cidr,
                    opts.node_cidr_mask_size,
                ));
            }
            Err(e) => {
                tracing::error!(cidr = %opts.cluster_cidr, error = %e, "invalid cluster CIDR; node IPAM disabled")
            }
        }
    }
    if on("nodelifecycle") {
        let lifecycle = crate::node_lifecycle::LifecycleOptions {
            grace_period: opts.node_monitor_grace_period,
            period: opts.node_monitor_period,
        };
        tasks.spawn(crate::node_lifecycle::run(client.clone(), lifecycle));
    }
    if on("podgc") {
        tasks.spawn(crate::podgc::run(
            client.clone(),
            opts.terminated_pod_gc_threshold,
            Duration::from_secs(20),
        ));
    }
    if on("clusterrole-aggregation") {
        tasks.spawn(crate::clusterrole_aggregation::run(client.clone()));
    }
    if on("servicelb") {
        tasks.spawn(crate::servicelb::run(
            client.clone(),
            opts.servicelb_pool.clone(),
        ));
    }
    tasks
}

/// Runs the controller manager until `leader` closes: the controllers run while it
/// says we lead and are stopped when it says we do not. `health` is told every few
/// seconds whether the manager works (a follower is healthy too, as upstream's
/// `/healthz`).
pub async fn run(
    client: kube::Client,
    opts: Options,
    mut leader: watch::Receiver<bool>,
    health: HealthReport,
) {
    let mut running: Option<JoinSet<()>> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        let leading = *leader.borrow_and_update();
        match (leading, running.is_some()) {
            (true, false) => {
                tracing::info!(identity = %opts.identity, "leading; starting controllers");
                running = Some(start(client.clone(), &opts));
            }
            (false, true) => {
                tracing::info!(identity = %opts.identity, "lost leadership; stopping controllers");
                running = None;
            }
            _ => {}
        }
        tokio::select! {
            changed = leader.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {
                let result = match &mut running {
                    Some(tasks) => match tasks.try_join_next() {
                        Some(Err(e)) if e.is_panic() => Err(format!("a controller panicked: {e}")),
                        _ => Ok(()),
                    },
                    None => Ok(()),
                };
                health(result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_lists_as_upstream_flag() {
        let list = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(enabled(&list(&["*"]), "replicaset"));
        assert!(!enabled(&list(&["*", "-replicaset"]), "replicaset"));
        assert!(enabled(&list(&["replicaset"]), "replicaset"));
        assert!(!enabled(&list(&["deployment"]), "replicaset"));
    }
}
