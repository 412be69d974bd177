//! The CronJob controller: creates a Job at each scheduled time (in the CronJob's time
//! zone), honouring `concurrencyPolicy`, `suspend`, `startingDeadlineSeconds` and the
//! history limits, and keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use crate::cron::Schedule;
use crate::events::{EventType, Recorder, reference};
use crate::pods::{controller_ref, is_controlled_by};
use crate::{Error, Result};

/// How far back a missed schedule is looked for (upstream gives up past 100 misses).
const LOOKBACK_MINUTES: usize = 100_000;

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
}

fn fmt(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `Some(true)` for a succeeded job, `Some(false)` for a failed one, `None` if running.
fn outcome(job: &Job) -> Option<bool> {
    let cs = job.status.as_ref()?.conditions.as_ref()?;
    if cs
        .iter()
        .any(|c| c.type_ == "Complete" && c.status == "True")
    {
        Some(true)
    } else if cs.iter().any(|c| c.type_ == "Failed" && c.status == "True") {
        Some(false)
    } else {
        None
    }
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action> {
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let name = cj.metadata.name.clone().unwrap_or_default();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let spec = cj.spec.clone().unwrap_or_default();
    let reference = reference(cj.as_ref());
    let tz = match spec.time_zone.as_deref() {
        None | Some("") => TimeZone::UTC,
        Some(zone) => match TimeZone::get(zone) {
            Ok(tz) => tz,
            Err(_) => {
                ctx.recorder
                    .record(
                        &reference,
                        EventType::Warning,
                        "UnknownTimeZone",
                        &format!("invalid timeZone: {zone:?}"),
                    )
                    .await;
                return Ok(Action::await_change());
            }
        },
    };
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            ctx.recorder
                .record(
                    &reference,
                    EventType::Warning,
                    "InvalidSchedule",
                    &format!("invalid schedule: {e}"),
                )
                .await;
            return Ok(Action::await_change());
        }
    };

    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let mut jobs: Vec<Job> = jobs_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|j| is_controlled_by(&j.metadata, &uid))
        .collect();
    jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let mut active: Vec<&Job> = jobs
        .iter()
        .filter(|j| outcome(j).is_none() && j.metadata.deletion_timestamp.is_none())
        .collect();
    let last_success = jobs
        .iter()
        .filter(|j| outcome(j) == Some(true))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .max();
    history_cleanup(
        &jobs_api,
        &jobs,
        spec.successful_jobs_history_limit.unwrap_or(3),
        Some(true),
    )
    .await;
    history_cleanup(
        &jobs_api,
        &jobs,
        spec.failed_jobs_history_limit.unwrap_or(1),
        Some(false),
    )
    .await;

    let now = jiff::Timestamp::now();
    let since = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0)
        .or(cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    let mut last_schedule = None;
    let mut created = None;
    if !spec.suspend.unwrap_or(false)
        && let Some(at) = schedule.last_between(since, now, &tz, LOOKBACK_MINUTES)
    {
        let too_late = spec
            .starting_deadline_seconds
            .is_some_and(|d| now > at + jiff::SignedDuration::from_secs(d));
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if too_late {
            ctx.recorder
                .record(
                    &reference,
                    EventType::Warning,
                    "MissSchedule",
                    &format!("Missed scheduled time to start a job: {}", fmt(at)),
                )
                .await;
            last_schedule = Some(at);
        } else if policy == "Forbid" && !active.is_empty() {
            ctx.recorder.record(&reference, EventType::Normal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid").await;
        } else {
            if policy == "Replace" {
                for j in active.drain(..) {
                    let jn = j.metadata.name.clone().unwrap_or_default();
                    let dp = DeleteParams {
                        propagation_policy: Some(PropagationPolicy::Background),
                        ..Default::default()
                    };
                    let _ = jobs_api.delete(&jn, &dp).await;
                    ctx.recorder
                        .record(
                            &reference,
                            EventType::Normal,
                            "SuccessfulDelete",
                            &format!("Deleted job {jn}"),
                        )
                        .await;
                }
            }
            let job = job_for(&cj, &name, at);
            match jobs_api.create(&PostParams::default(), &job).await {
                Ok(j) => {
                    let jn = j.metadata.name.clone().unwrap_or_default();
                    ctx.recorder
                        .record(
                            &reference,
                            EventType::Normal,
                            "SuccessfulCreate",
                            &format!("Created job {jn}"),
                        )
                        .await;
                    created = Some(j);
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
            last_schedule = Some(at);
        }
    }

    let mut refs: Vec<serde_json::Value> = active
        .iter()
        .map(|j| json!({"apiVersion": "batch/v1", "kind": "Job", "name": j.metadata.name, "namespace": ns, "uid": j.metadata.uid}))
        .collect();
    if let Some(j) = &created {
        refs.push(json!({"apiVersion": "batch/v1", "kind": "Job", "name": j.metadata.name, "namespace": ns, "uid": j.metadata.uid}));
    }
    let mut status =
        json!({"active": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) }});
    if let Some(at) = last_schedule {
        status["lastScheduleTime"] = json!(fmt(at));
    }
    if let Some(at) = last_success {
        status["lastSuccessfulTime"] = json!(fmt(at));
    }
    let cjs: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    cjs.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;

    let next = schedule.next_after(now, &tz, LOOKBACK_MINUTES);
    let wait = next
        .map(|n| now.duration_until(n).unsigned_abs() + Duration::from_millis(200))
        .unwrap_or(Duration::from_secs(300));
    Ok(Action::requeue(wait.min(Duration::from_secs(300))))
}

fn job_for(cj: &CronJob, name: &str, at: jiff::Timestamp) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(
        "batch.kubernetes.io/cronjob-scheduled-timestamp".into(),
        fmt(at),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{}", at.as_second() / 60)),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Keeps the newest `limit` finished jobs of one outcome.
async fn history_cleanup(api: &Api<Job>, jobs: &[Job], limit: i32, which: Option<bool>) {
    let finished: Vec<&Job> = jobs.iter().filter(|j| outcome(j) == which).collect();
    let excess = finished.len().saturating_sub(limit.max(0) as usize);
    for j in &finished[..excess] {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        let _ = api
            .delete(j.metadata.name.as_deref().unwrap_or_default(), &dp)
            .await;
    }
}

fn error_policy(_cj: Arc<CronJob>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "cronjob controller retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped.
pub async fn run(client: kube::Client) {
    let cjs: Api<CronJob> = Api::all(client.clone());
    let jobs: Api<Job> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "cronjob-controller"),
        client,
    });
    Controller::new(cjs, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
