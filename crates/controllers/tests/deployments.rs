//! Deployments against the real API server with the ReplicaSet controller: rollouts
//! with surge and unavailability limits, Recreate, revisions with `kubectl rollout
//! history/undo/restart/status`, scaling, pausing, progress deadlines. The tests play
//! the kubelet: they mark pods ready when the step under test needs it.

mod common;

use std::collections::BTreeSet;

use common::{events_for, is_ready, live_pods, ready_all, server, start, stop, wait};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::TestServer;

fn deployment(name: &str, replicas: i32, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": "first"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "strategy": strategy,
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}},
    }))
    .unwrap()
}

async fn replicasets(client: &kube::Client, app: &str) -> Vec<ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut sets = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items;
    // By revision: creation timestamps have whole seconds only.
    sets.sort_by_key(|rs| {
        annotation(rs, "deployment.kubernetes.io/revision").and_then(|r| r.parse::<i64>().ok())
    });
    sets
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.metadata.annotations.as_ref()?.get(key).cloned()
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn image(p: &k8s_openapi::api::core::v1::Pod) -> String {
    p.spec.as_ref().unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

/// Whether the rollout is over: the status says so and every pod runs the current
/// template. (The pods are checked too because the status cannot show by itself that
/// the controller has seen the latest spec while the server does not bump
/// `metadata.generation`.)
async fn complete(client: &kube::Client, name: &str) -> bool {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let Ok(d) = api.get(name).await else {
        return false;
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let template = d.spec.clone().unwrap().template;
    let Some(st) = d.status else { return false };
    let status_done = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
        && st.updated_replicas == Some(want)
        && st.replicas == Some(want)
        && st.available_replicas == Some(want);
    let pods = live_pods(client, &format!("app={name}")).await;
    let current = |p: &k8s_openapi::api::core::v1::Pod| {
        let t_annotations = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default();
        let p_annotations = p.metadata.annotations.clone().unwrap_or_default();
        image(p)
            == template.spec.as_ref().unwrap().containers[0]
                .image
                .clone()
                .unwrap()
            && t_annotations
                .iter()
                .all(|(k, v)| p_annotations.get(k) == Some(v))
    };
    status_done && pods.len() == want as usize && pods.iter().all(|p| current(p) && is_ready(p))
}

/// Drives a rollout to its end by readying pods step by step, checking after every
/// step that at most `max_total` pods exist and at least `min_ready` are ready.
async fn drive(client: &kube::Client, name: &str, max_total: usize, min_ready: usize) {
    let selector = format!("app={name}");
    for _ in 0..50 {
        let snapshot = |pods: &[k8s_openapi::api::core::v1::Pod]| -> BTreeSet<String> {
            pods.iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect()
        };
        let before = snapshot(&live_pods(client, &selector).await);
        ready_all(client, &selector).await;
        let changed = wait("the rollout to move on", || async {
            let pods = live_pods(client, &selector).await;
            assert!(
                pods.len() <= max_total,
                "{} pods exceed the surge limit of {max_total}",
                pods.len()
            );
            let ready = pods.iter().filter(|p| is_ready(p)).count();
            assert!(
                ready >= min_ready || pods.iter().any(|p| !is_ready(p)),
                "unavailable"
            );
            if complete(client, name).await {
                return Some(false);
            }
            (snapshot(&pods) != before).then_some(true)
        })
        .await;
        let pods = live_pods(client, &selector).await;
        assert!(
            pods.iter().filter(|p| is_ready(p)).count() >= min_ready,
            "fewer than {min_ready} ready pods"
        );
        if !changed {
            return;
        }
    }
    panic!("rollout of {name} did not finish");
}

fn history(s: &TestServer, name: &str) -> String {
    s.ok(&["rollout", "history", &format!("deployment/{name}")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_rolls_out_revisions_with_surge_limits_and_undo() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset", "deployment"]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    api.create(&PostParams::default(), &deployment("web", 3, strategy))
        .await
        .unwrap();

    let rs = wait("a replica set with 3 pods", || async {
        let sets = replicasets(&client, "web").await;
        (sets.len() == 1 && live_pods(&client, "app=web").await.len() == 3).then(|| sets[0].clone())
    })
    .await;
    let name = rs.metadata.name.clone().unwrap();
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(name, format!("web-{hash}"));
    assert_eq!(
        rs.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()["pod-template-hash"],
        hash
    );
    assert_eq!(
        annotation(&rs, "deployment.kubernetes.io/revision").as_deref(),
        Some("1")
    );
    assert_eq!(
        annotation(&rs, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&rs, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("4")
    );
    assert_eq!(
        annotation(&rs, "kubernetes.io/change-cause").as_deref(),
        Some("first")
    );
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Deployment", Some(true))
    );
    wait("ScalingReplicaSet event", || async {
        let events = events_for(&client, "web").await;
        events
            .iter()
            .any(|(r, m)| {
                r == "ScalingReplicaSet"
                    && *m == format!("Scaled up replica set {name} from 0 to 3")
            })
            .then_some(())
    })
    .await;

    ready_all(&client, "app=web").await;
    let out = tokio::task::spawn_blocking({
        let kubeconfig = s.kubeconfig.clone();
        move || {
            std::process::Command::new("kubectl")
                .args(["rollout", "status", "deployment/web", "--timeout=30s"])
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "rollout status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deployment \"web\" successfully rolled out")
    );
    let d = api.get("web").await.unwrap();
    let conditions: Vec<(String, String, String)> = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason.unwrap_or_default()))
        .collect();
    assert_eq!(
        conditions,
        [
            (
                "Available".into(),
                "True".into(),
                "MinimumReplicasAvailable".into()
            ),
            (
                "Progressing".into(),
                "True".into(),
                "NewReplicaSetAvailable".into()
            ),
        ]
    );
    assert_eq!(
        d.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    // A new image: a second ReplicaSet, never more than 4 pods, never fewer than 3 ready.
    // (The change cause is copied to the current ReplicaSet, so it is set after the image.)
    s.ok(&["set", "image", "deployment/web", "c=nginx:2"]);
    s.ok(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=second",
        "--overwrite",
    ]);
    drive(&client, "web", 4, 3).await;
    let sets = replicasets(&client, "web").await;
    assert_eq!(sets.len(), 2);
    assert_eq!((rs_replicas(&sets[0]), rs_replicas(&sets[1])), (0, 3));
    assert_eq!(
        annotation(&sets[1], "deployment.kubernetes.io/revision").as_deref(),
        Some("2")
    );
    assert!(
        live_pods(&client, "app=web")
            .await
            .iter()
            .all(|p| image(p) == "nginx:2")
    );
    let h = history(&s, "web");
    assert!(
        h.contains("1         first") && h.contains("2         second"),
        "{h}"
    );

    // Undo goes back to the first template: its ReplicaSet becomes revision 3.
    s.ok(&["rollout", "undo", "deployment/web"]);
    drive(&client, "web", 4, 3).await;
    let sets = replicasets(&client, "web").await;
    assert_eq!((rs_replicas(&sets[0]), rs_replicas(&sets[1])), (0, 3));
    assert_eq!(
        sets[1].metadata.name.as_deref(),
        Some(name.as_str()),
        "the first set is back"
    );
    assert_eq!(
        annotation(&sets[1], "deployment.kubernetes.io/revision").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&sets[1], "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    assert!(
        live_pods(&client, "app=web")
            .await
            .iter()
            .all(|p| image(p) == "nginx:1")
    );
    let h = history(&s, "web");
    assert!(
        h.contains("2 ") && h.contains("3 ") && !h.contains("\n1 "),
        "{h}"
    );

    // Scaling changes only the current ReplicaSet.
    s.ok(&["scale", "deployment/web", "--replicas=5"]);
    wait("5 replicas", || async {
        let sets = replicasets(&client, "web").await;
        (rs_replicas(&sets[1]) == 5
            && rs_replicas(&sets[0]) == 0
            && live_pods(&client, "app=web").await.len() == 5)
            .then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_stops_old_pods_before_starting_new_ones() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset", "deployment"]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("db", 2, json!({"type": "Recreate"})),
    )
    .await
    .unwrap();
    wait("2 pods", || async {
        (live_pods(&client, "app=db").await.len() == 2).then_some(())
    })
    .await;
    ready_all(&client, "app=db").await;
    wait("complete", || async {
        complete(&client, "db").await.then_some(())
    })
    .await;

    s.ok(&["set", "image", "deployment/db", "c=nginx:2"]);
    wait("new pods only", || async {
        let pods = live_pods(&client, "app=db").await;
        let images: BTreeSet<String> = pods.iter().map(image).collect();
        assert!(
            images.len() <= 1,
            "old and new pods side by side: {images:?}"
        );
        (pods.len() == 2 && images.contains("nginx:2")).then_some(())
    })
    .await;
    ready_all(&client, "app=db").await;
    wait("complete", || async {
        complete(&client, "db").await.then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_pause_history_limit_and_legacy_rollback() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset", "deployment"]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("app", 1, json!({}));
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    api.create(&PostParams::default(), &d).await.unwrap();
    drive(&client, "app", 2, 0).await;

    // Each restart is a new template, hence a new ReplicaSet; only one old one is kept.
    for n in 2..=3 {
        // kubectl refuses a second restart within the same second.
        wait("kubectl rollout restart", || async {
            s.kubectl(&["rollout", "restart", "deployment/app"])
                .status
                .success()
                .then_some(())
        })
        .await;
        wait("a new replica set", || async {
            replicasets(&client, "app")
                .await
                .iter()
                .any(|rs| {
                    annotation(rs, "deployment.kubernetes.io/revision") == Some(n.to_string())
                })
                .then_some(())
        })
        .await;
        drive(&client, "app", 2, 0).await;
    }
    wait("history cleaned to one old set", || async {
        let sets = replicasets(&client, "app").await;
        let revisions: Vec<String> = sets
            .iter()
            .filter_map(|rs| annotation(rs, "deployment.kubernetes.io/revision"))
            .collect();
        (revisions == ["2", "3"]).then_some(())
    })
    .await;

    // Paused: template changes wait.
    s.ok(&["rollout", "pause", "deployment/app"]);
    s.ok(&["set", "image", "deployment/app", "c=nginx:9"]);
    wait("paused condition", || async {
        let d = api.get("app").await.ok()?;
        let c = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.reason.as_deref() == Some("DeploymentPaused")).then_some(())
    })
    .await;
    let images: Vec<String> = replicasets(&client, "app")
        .await
        .iter()
        .map(|rs| {
            rs.spec
                .clone()
                .unwrap()
                .template
                .unwrap()
                .spec
                .unwrap()
                .containers[0]
                .image
                .clone()
                .unwrap()
        })
        .collect();
    assert!(
        !images.contains(&"nginx:9".to_string()),
        "no rollout while paused: {images:?}"
    );
    s.ok(&["rollout", "resume", "deployment/app"]);
    drive(&client, "app", 2, 0).await;
    assert_eq!(image(&live_pods(&client, "app=app").await[0]), "nginx:9");

    // The extensions/v1beta1 rollback annotation still works.
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(
            &json!({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "0"}}}),
        ),
    )
    .await
    .unwrap();
    wait("rolled back to the previous template", || async {
        let d = api.get("app").await.ok()?;
        let image = d.spec?.template.spec?.containers[0].image.clone()?;
        let cleared = !d
            .metadata
            .annotations?
            .contains_key("deprecated.deployment.rollback.to");
        (image == "nginx:1" && cleared).then_some(())
    })
    .await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["replicaset", "deployment"]);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut d = deployment("stuck", 1, json!({}));
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(1);
    api.create(&PostParams::default(), &d).await.unwrap();
    wait("ProgressDeadlineExceeded", || async {
        let d = api.get("stuck").await.ok()?;
        let c = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.status == "False" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            .then_some(())
    })
    .await;
    let err = s.err(&["rollout", "status", "deployment/stuck", "--timeout=10s"]);
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    stop(s).await;
}
