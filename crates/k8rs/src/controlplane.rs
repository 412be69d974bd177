//! The control-plane components of `k8rs server` besides the API server: the
//! controller manager and the scheduler, each behind its own leader lease.

use std::time::Duration;

use apiserver::ApiState;
use apiserver::auth::UserInfo;
use apiserver::server::Router;
use controllers::leader::{self, LeaseConfig};
use ipnet::IpNet;
use std::sync::Arc;

pub struct ControlPlaneConfig {
    pub identity: String,
    pub cluster_cidr: IpNet,
    pub root_ca_pem: String,
    pub node_monitor_grace_period: Duration,
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

    let mut cm_leading = leader::spawn(
        cm_client.clone(),
        LeaseConfig::new("kube-controller-manager", &cfg.identity),
    );
    let health = state.clone();
    tokio::spawn(async move {
        while !*cm_leading.borrow() {
            if cm_leading.changed().await.is_err() {
                return;
            }
        }
        tracing::info!("controller manager is leading; starting controllers");
        let c = cm_client;
        tokio::spawn(controllers::serviceaccount::run(
            c.clone(),
            Some(cfg.root_ca_pem),
        ));
        tokio::spawn(controllers::endpoints::run(c.clone()));
        tokio::spawn(controllers::job::run(c.clone()));
        tokio::spawn(controllers::cronjob::run(c.clone()));
        tokio::spawn(controllers::daemonset::run(c.clone()));
        tokio::spawn(controllers::statefulset::run(c.clone()));
        tokio::spawn(controllers::node_ipam::run(c.clone(), cfg.cluster_cidr, 24));
        tokio::spawn(controllers::node_lifecycle::run(
            c.clone(),
            controllers::node_lifecycle::LifecycleOptions {
                grace_period: cfg.node_monitor_grace_period,
                period: Duration::from_secs(5),
            },
        ));
        tokio::spawn(controllers::podgc::run(c, 12_500, Duration::from_secs(20)));
        loop {
            health.components.report("controller-manager", Ok(()));
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });

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
