//! Deployment status and conditions (upstream's progress.go and calculateStatus):
//! counts summed over the ReplicaSets, `Available` from the minimum availability,
//! `Progressing` from progress made against `progressDeadlineSeconds`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::util::{
    max_unavailable, progress_deadline, replicas, rs_available, rs_ready, rs_replicas,
    rs_status_replicas, sum,
};

pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = Time(Timestamp::now());
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
        reason: Some(reason.into()),
        message: Some(message),
    }
}

pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets a condition; one with the same status and reason is left alone, and the
/// transition time is kept while the status stays the same.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_.clone());
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = status.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
    }
}

fn reason_of(c: Option<&DeploymentCondition>) -> Option<&str> {
    c.and_then(|c| c.reason.as_deref())
}

/// The status the ReplicaSets add up to (upstream's calculateStatus).
pub fn calculate(
    all: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let available = sum(all, rs_available);
    let unavailable = (sum(all, rs_replicas) - available).max(0);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: Some(d.metadata.generation.unwrap_or(0)),
        replicas: Some(sum(all, rs_status_replicas)),
        updated_replicas: Some(new_rs.map_or(0, rs_status_replicas)),
        ready_replicas: Some(sum(all, rs_ready)),
        available_replicas: Some(available),
        unavailable_replicas: Some(unavailable),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        ..Default::default()
    };
    if available >= replicas(d) - max_unavailable(d) {
        let c = new_condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.".into(),
        );
        set_condition(&mut status, c);
    } else {
        let c = new_condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
        );
        set_condition(&mut status, c);
    }
    status
}

/// Every replica updated and available, and the latest spec observed.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// More pods updated, ready or available, or fewer old ones, than the stored status says.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// No progress for longer than the deadline since the Progressing condition's last update.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = get_condition(s, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => cond
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + SignedDuration::from_secs(i64::from(deadline)) < now),
    }
}

/// The rollout's status with its Progressing condition brought up to date.
pub fn rollout_status(
    all: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(all, new_rs, d);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = get_condition(&status, PROGRESSING).cloned();
    let is_complete = status.replicas == status.updated_replicas
        && reason_of(current.as_ref()) == Some(NEW_RS_AVAILABLE);
    let name = d.metadata.name.clone().unwrap_or_default();
    let subject = match new_rs {
        Some(rs) => format!(
            "ReplicaSet {:?}",
            rs.metadata.name.clone().unwrap_or_default()
        ),
        None => format!("Deployment {name:?}"),
    };
    if progress_deadline(d).is_some() && !is_complete {
        if complete(d, &status) {
            let c = new_condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                format!("{subject} has successfully progressed."),
            );
            set_condition(&mut status, c);
        } else if progressing(d, &status) {
            // Refresh even when reason and status stay: lastUpdateTime is the progress clock.
            let mut c = new_condition(
                PROGRESSING,
                "True",
                RS_UPDATED,
                format!("{subject} is progressing."),
            );
            if let Some(cur) = &current {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if timed_out(d, &status, now) {
            let c = new_condition(
                PROGRESSING,
                "False",
                TIMED_OUT,
                format!("{subject} has timed out progressing."),
            );
            set_condition(&mut status, c);
        }
    }
    // Creation failures of the ReplicaSets surface as the deployment's ReplicaFailure.
    let failure = all.iter().find_map(|rs| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE)
            .cloned()
    });
    match failure {
        Some(f) => {
            let c = new_condition(
                REPLICA_FAILURE,
                &f.status,
                f.reason.as_deref().unwrap_or_default(),
                f.message.unwrap_or_default(),
            );
            set_condition(&mut status, c);
        }
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// When to look again at a rollout that may pass its deadline without any event.
pub fn requeue_stuck(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let cond = get_condition(s, PROGRESSING)?;
    if matches!(cond.reason.as_deref(), Some(NEW_RS_AVAILABLE | TIMED_OUT)) || complete(d, s) {
        return None;
    }
    let at = cond.last_update_time.as_ref()?.0 + SignedDuration::from_secs(i64::from(deadline));
    let left = at.duration_since(now);
    Some(if left.is_negative() {
        Duration::from_millis(100)
    } else {
        left.unsigned_abs() + Duration::from_secs(1)
    })
}

/// The status as written: every count explicit (zeros included) so a merge patch
/// replaces all of it; also the form statuses are compared in.
pub fn status_body(s: &DeploymentStatus) -> Value {
    let n = |v: Option<i32>| v.unwrap_or(0);
    let conditions = s.conditions.as_ref().filter(|c| !c.is_empty());
    json!({
        "observedGeneration": s.observed_generation.unwrap_or(0),
        "replicas": n(s.replicas),
        "updatedReplicas": n(s.updated_replicas),
        "readyReplicas": n(s.ready_replicas),
        "availableReplicas": n(s.available_replicas),
        "unavailableReplicas": n(s.unavailable_replicas),
        "collisionCount": s.collision_count,
        "conditions": conditions,
    })
}

pub fn same_status(d: &Deployment, s: &DeploymentStatus) -> bool {
    d.status
        .as_ref()
        .is_some_and(|old| status_body(old) == status_body(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "progressDeadlineSeconds": 10},
            "status": status}))
        .unwrap()
    }

    #[test]
    fn progress_refreshes_and_deadline_times_out() {
        let dep = d(
            3,
            json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 1}),
        );
        let mut s = calculate(&[], None, &dep);
        s.updated_replicas = Some(2);
        assert!(progressing(&dep, &s));
        let stale = Timestamp::now() - SignedDuration::from_secs(60);
        let mut c = new_condition(PROGRESSING, "True", RS_UPDATED, "x".into());
        c.last_update_time = Some(Time(stale));
        let mut stuck = DeploymentStatus::default();
        set_condition(&mut stuck, c);
        assert!(timed_out(&dep, &stuck, Timestamp::now()));
        assert_eq!(
            requeue_stuck(&dep, &stuck, Timestamp::now()),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn available_condition_follows_min_availability() {
        let dep = d(4, json!({}));
        let s = calculate(&[], None, &dep);
        let c = get_condition(&s, AVAILABLE).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some(MIN_UNAVAILABLE))
        );
        assert_eq!(s.unavailable_replicas, Some(0));
        assert_eq!(s.observed_generation, Some(2));
    }
}
