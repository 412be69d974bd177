//! Leader election through a coordination.k8s.io Lease, as upstream's leaderelection
//! package does it: acquire when the lease is free or expired, renew well within the
//! lease duration, give up leadership when renewing fails past the deadline.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Upstream's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(name: &str, identity: &str) -> Self {
        Self {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Runs the election forever; the returned channel says whether we lead now.
pub fn spawn(client: kube::Client, cfg: LeaseConfig) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
        let mut last_renew = tokio::time::Instant::now();
        loop {
            match try_acquire_or_renew(&api, &cfg).await {
                Ok(true) => {
                    last_renew = tokio::time::Instant::now();
                    let _ = tx.send_if_modified(|l| !std::mem::replace(l, true));
                }
                Ok(false) => {
                    let _ = tx.send_if_modified(|l| std::mem::replace(l, false));
                }
                Err(e) => {
                    tracing::debug!(error = %e, lease = %cfg.name, "lease update failed");
                    if last_renew.elapsed() > cfg.renew_deadline {
                        let _ = tx.send_if_modified(|l| std::mem::replace(l, false));
                    }
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(cfg.retry_period).await;
        }
    });
    rx
}

/// One round: true when we hold the lease afterwards.
async fn try_acquire_or_renew(api: &Api<Lease>, cfg: &LeaseConfig) -> kube::Result<bool> {
    let now = jiff::Timestamp::now();
    let secs = cfg.lease_duration.as_secs() as i32;
    let Some(mut lease) = api.get_opt(&cfg.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(cfg.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(cfg.identity.clone()),
                lease_duration_seconds: Some(secs),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let renewed = spec
        .renew_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let duration =
        jiff::SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(secs)));
    let expired = renewed + duration < now;
    if holder != cfg.identity && !holder.is_empty() && !expired {
        return Ok(false);
    }
    if holder != cfg.identity {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(cfg.identity.clone());
    spec.lease_duration_seconds = Some(secs);
    spec.renew_time = Some(MicroTime(now));
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
