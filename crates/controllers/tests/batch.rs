//! Jobs and CronJobs against the real API server, with hollow nodes that "run" pods
//! for a moment and the scheduler placing them.

mod support;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{server_with_nodes, stop, wait};

fn start_scheduler(client: &kube::Client) {
    let (tx, rx) = tokio::sync::watch::channel(true);
    let c = client.clone();
    tokio::spawn(async move {
        let _leader = tx;
        scheduler::run(c, scheduler::Options::default(), rx).await
    });
}

fn job_spec(extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_to_completion() {
    let (s, client) = server_with_nodes(2).await;
    start_scheduler(&client);
    tokio::spawn(controllers::job::run(client.clone()));
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = json!({"metadata": {"name": "pi"}, "spec": job_spec(json!({"completions": 3, "parallelism": 2}))});
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(job).unwrap(),
    )
    .await
    .unwrap();
    let status = wait("job complete", || async {
        let st = jobs.get("pi").await.ok()?.status?;
        st.conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
            .then_some(st)
    })
    .await;
    assert_eq!(status.succeeded, Some(3));
    assert!(status.completion_time.is_some() && status.start_time.is_some());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let listed = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=pi"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 3);

    let indexed = json!({"metadata": {"name": "idx"}, "spec": job_spec(json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed"}))});
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(indexed).unwrap(),
    )
    .await
    .unwrap();
    let st = wait("indexed job complete", || async {
        let st = jobs.get("idx").await.ok()?.status?;
        (st.completed_indexes.as_deref() == Some("0,1")).then_some(st)
    })
    .await;
    assert_eq!(st.succeeded, Some(2));
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_fires_and_keeps_history() {
    let (s, client) = server_with_nodes(1).await;
    start_scheduler(&client);
    tokio::spawn(controllers::job::run(client.clone()));
    tokio::spawn(controllers::cronjob::run(client.clone()));
    let cjs: Api<CronJob> = Api::namespaced(client.clone(), "default");
    let cj = json!({"metadata": {"name": "tick"}, "spec": {"schedule": "* * * * *",
        "jobTemplate": {"spec": job_spec(json!({}))}}});
    cjs.create(&PostParams::default(), &serde_json::from_value(cj).unwrap())
        .await
        .unwrap();
    // Pretend the last run was two minutes ago, so a run is due now.
    let past = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    cjs.patch_status(
        "tick",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"lastScheduleTime": past}})),
    )
    .await
    .unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = wait("a job from the cronjob", || async {
        jobs.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|j| {
                j.metadata
                    .name
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("tick-")
            })
    })
    .await;
    assert!(
        job.metadata
            .annotations
            .unwrap()
            .contains_key("batch.kubernetes.io/cronjob-scheduled-timestamp")
    );
    wait("lastSuccessfulTime", || async {
        cjs.get("tick").await.ok()?.status?.last_successful_time
    })
    .await;
    stop(s).await;
}
