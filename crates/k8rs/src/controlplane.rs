//! The control-plane components of `k8rs server` besides the API server: the
//! controller manager and the scheduler, each behind its own leader lease.

use std::time::Duration;

use apiserver::ApiState;
use apiserver::auth::UserInfo;
use apiserver::server::Router;
use controllers::leader::{self, LeaseConfig};
use std::sync::Arc;

pub struct ControlPlaneConfig {
    pub identity: String,
    pub controllers: controllers::Options,
}

/// Starts the controllers and the scheduler; they run until the process ends.
pub fn start(router: Router, state: Arc<ApiState>, cfg: ControlPlaneConfig) {
    let cm_client = crate::inprocess::client(
        router.clone(),
        UserInfo::new(
            "system:kube-controller-manager",
            vec!["system:masters".into()],
        ),
    );
    let sched_client = crate::inprocess::client(
        router,
        UserInfo::new("system:kube-scheduler", vec!["system:masters".into()]),
    );

    let cm_leading = leader::spawn(
        cm_client.clone(),
        LeaseConfig::new("kube-controller-manager", &cfg.identity),
    );
    let opts = cfg.controllers;
    let health = state.clone();
    let report: controllers::HealthReport =
        Arc::new(move |r| health.components.report("controller-manager", r));
    tokio::spawn(controllers::run(cm_client, opts, cm_leading, report));

    let sched_leading = leader::spawn(
        sched_client.clone(),
        LeaseConfig::new("kube-scheduler", &cfg.identity),
    );
    tokio::spawn(scheduler::run(
        sched_client,
        scheduler::Options::default(),
        sched_leading,
    ));
    let health = state;
    tokio::spawn(async move {
        loop {
            health.components.report("scheduler", Ok(()));
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
}
