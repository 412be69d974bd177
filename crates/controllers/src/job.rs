//! The Job controller: runs pods until `completions` succeed (or, without
//! completions, until one succeeds and the rest finish), at most `parallelism` at a
//! time, giving up after `backoffLimit` failures or `activeDeadlineSeconds`; indexed
//! jobs give each pod its completion index; finished jobs are deleted after
//! `ttlSecondsAfterFinished`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use crate::events::{EventType, Recorder, reference};
use crate::pods::{
    controller_ref, is_active, is_controlled_by, is_ready, phase, pod_from_template,
};
use crate::{Error, Result};

pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn condition(kind: &str, reason: &str, message: &str) -> serde_json::Value {
    let t = now();
    json!({"type": kind, "status": "True", "reason": reason, "message": message, "lastProbeTime": t, "lastTransitionTime": t})
}

fn finished(job: &Job) -> Option<(String, jiff::Timestamp)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find_map(|c| {
            ((c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True").then(|| {
                (
                    c.type_.clone(),
                    c.last_transition_time
                        .as_ref()
                        .map(|t| t.0)
                        .unwrap_or_else(jiff::Timestamp::now),
                )
            })
        })
}

fn index_of(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .as_ref()?
        .get(INDEX_ANNOTATION)?
        .parse()
        .ok()
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if let Some((_, at)) = finished(&job) {
        return ttl(&jobs, &job, at).await;
    }
    let spec = job.spec.clone().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Vec<Pod> = pods_api
        .list(&ListParams::default().labels(&format!("{CONTROLLER_UID_LABEL}={uid}")))
        .await?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let completions = spec.completions;
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let active: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    let succeeded_pods: Vec<&Pod> = pods.iter().filter(|p| phase(p) == "Succeeded").collect();
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i32;
    let succeeded_indexes: BTreeSet<i32> =
        succeeded_pods.iter().filter_map(|p| index_of(p)).collect();
    let succeeded = if indexed {
        succeeded_indexes.len() as i32
    } else {
        succeeded_pods.len() as i32
    };
    let ready = active.iter().filter(|p| is_ready(p)).count() as i32;
    let start_time = job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0);
    let suspended = spec.suspend.unwrap_or(false);

    let mut status =
        json!({"active": active.len(), "succeeded": succeeded, "failed": failed, "ready": ready});
    if start_time.is_none() && !suspended {
        status["startTime"] = json!(now());
    }
    let deadline_passed =
        spec.active_deadline_seconds
            .zip(start_time)
            .is_some_and(|(secs, start)| {
                jiff::Timestamp::now() >= start + jiff::SignedDuration::from_secs(secs)
            });
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    let reference = reference(job.as_ref());
    if complete {
        status["completionTime"] = json!(now());
        status["conditions"] = json!([
            condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods"
            ),
            condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods"
            ),
        ]);
        ctx.recorder
            .record(&reference, EventType::Normal, "Completed", "Job completed")
            .await;
    } else if failed > backoff_limit || deadline_passed {
        let (reason, message) = if deadline_passed {
            (
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            )
        } else {
            (
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        };
        for p in &active {
            let _ = pods_api
                .delete(
                    p.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
        }
        status["active"] = json!(0);
        status["conditions"] = json!([
            condition("FailureTarget", reason, message),
            condition("Failed", reason, message)
        ]);
        ctx.recorder
            .record(&reference, EventType::Warning, reason, message)
            .await;
    } else if suspended {
        for p in &active {
            let _ = pods_api
                .delete(
                    p.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
        }
        status["active"] = json!(0);
    } else {
        let remaining = completions
            .map(|c| (c - succeeded).max(0))
            .unwrap_or(parallelism);
        let wanted = parallelism.min(remaining) as usize;
        if active.len() < wanted {
            let taken: BTreeSet<i32> = active
                .iter()
                .filter_map(|p| index_of(p))
                .chain(succeeded_indexes.iter().copied())
                .collect();
            let mut free = (0..completions.unwrap_or(0)).filter(|i| !taken.contains(i));
            for _ in active.len()..wanted {
                let index = if indexed { free.next() } else { None };
                if indexed && index.is_none() {
                    break;
                }
                let pod = job_pod(&job, &name, &uid, index);
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        let msg = format!("Created pod: {}", p.metadata.name.unwrap_or_default());
                        ctx.recorder
                            .record(&reference, EventType::Normal, "SuccessfulCreate", &msg)
                            .await;
                    }
                    Err(e) => {
                        ctx.recorder
                            .record(
                                &reference,
                                EventType::Warning,
                                "FailedCreate",
                                &format!("Error creating: {e}"),
                            )
                            .await;
                        return Err(e.into());
                    }
                }
            }
        }
    }
    if indexed {
        let completed: Vec<String> = succeeded_indexes.iter().map(|i| i.to_string()).collect();
        status["completedIndexes"] = json!(completed.join(","));
    }
    jobs.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;
    let requeue = spec
        .active_deadline_seconds
        .map(|_| Duration::from_secs(1))
        .unwrap_or(Duration::from_secs(60));
    Ok(Action::requeue(requeue))
}

fn job_pod(job: &Job, name: &str, uid: &str, index: Option<i32>) -> Pod {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let labels = BTreeMap::from([
        (CONTROLLER_UID_LABEL.to_string(), uid.to_string()),
        (JOB_NAME_LABEL.to_string(), name.to_string()),
        ("controller-uid".to_string(), uid.to_string()),
        ("job-name".to_string(), name.to_string()),
    ]);
    let generate = match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    };
    let mut pod = pod_from_template(&template, &generate, controller_ref(job), &labels);
    if let Some(i) = index {
        pod.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(INDEX_ANNOTATION.into(), i.to_string());
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(
                "batch.kubernetes.io/job-completion-index".into(),
                i.to_string(),
            );
        if let Some(spec) = pod.spec.as_mut() {
            spec.hostname = Some(format!("{name}-{i}"));
            for c in &mut spec.containers {
                c.env.get_or_insert_with(Vec::new).push(EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: Some(i.to_string()),
                    value_from: None,
                });
            }
        }
    }
    pod
}

/// Deletes a finished job once its TTL has passed.
async fn ttl(jobs: &Api<Job>, job: &Job, finished_at: jiff::Timestamp) -> Result<Action> {
    let Some(secs) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    let due = finished_at + jiff::SignedDuration::from_secs(i64::from(secs));
    let now = jiff::Timestamp::now();
    if now >= due {
        let dp = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Background),
            ..Default::default()
        };
        let _ = jobs
            .delete(job.metadata.name.as_deref().unwrap_or_default(), &dp)
            .await;
        return Ok(Action::await_change());
    }
    let wait = now.duration_until(due).unsigned_abs();
    Ok(Action::requeue(wait.min(Duration::from_secs(3600))))
}

fn error_policy(_job: Arc<Job>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "job controller retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped.
pub async fn run(client: kube::Client) {
    let jobs: Api<Job> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "job-controller"),
        client,
    });
    Controller::new(jobs, watcher::Config::default())
        .owns(pods, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
