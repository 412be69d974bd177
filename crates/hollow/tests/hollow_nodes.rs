//! Hollow nodes against the real API server (in-process): nodes register and show
//! Ready, bound pods run, run-to-completion pods succeed, deleted pods go away.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use testkit::TestServer;

fn pod(name: &str, node: &str, restart: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap()
}

async fn wait_phase(api: &Api<Pod>, name: &str, phase: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = api.get_opt(name).await.unwrap();
        if p.as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            == Some(phase)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pod {name} never reached {phase}: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_and_run_pods() {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let opts = hollow::Options {
        count: 3,
        job_runtime: Duration::from_millis(200),
        ..Default::default()
    };
    let nodes = tokio::spawn(hollow::run(client.clone(), opts));

    let kubeconfig = s.kubeconfig.clone();
    let listed = testkit_wait(move || {
        let out = std::process::Command::new("kubectl")
            .args(["get", "nodes", "--no-headers"])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (text.lines().filter(|l| l.contains(" Ready ")).count() == 3).then_some(text)
    })
    .await;
    assert!(listed.contains("hollow-node-0"), "{listed}");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("web", "hollow-node-1", "Always"),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("job", "hollow-node-2", "Never"),
    )
    .await
    .unwrap();
    wait_phase(&pods, "web", "Running").await;
    wait_phase(&pods, "job", "Succeeded").await;
    let web = pods.get("web").await.unwrap();
    assert!(web.status.unwrap().pod_ip.is_some());

    pods.delete("web", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pods.get_opt("web").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "pod web was never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nodes.abort();
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}

/// Polls a blocking check off the async threads until it yields, within 20 s.
async fn testkit_wait<T: Send + 'static>(
    check: impl Fn() -> Option<T> + Send + Sync + 'static,
) -> T {
    let check = std::sync::Arc::new(check);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = check.clone();
        if let Some(v) = tokio::task::spawn_blocking(move || c()).await.unwrap() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not met within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
