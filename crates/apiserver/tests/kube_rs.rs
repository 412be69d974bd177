//! kube-rs against the API server over plain HTTP: typed CRUD, list paging, and the
//! runtime's watcher (list then watch, resume from resourceVersion).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use testkit::TestServer;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "t"}},
        "data": {"k": "v"},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_paging_and_watch() {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(s.client(), "default");

    // A watcher started before the writes sees every one of them.
    let events = watcher(api.clone(), watcher::Config::default().labels("app=t")).applied_objects();
    let seen = tokio::spawn(async move {
        events
            .take(25)
            .map_ok(|cm| cm.metadata.name.unwrap_or_default())
            .try_collect::<Vec<_>>()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    for i in 0..25 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i:02}")))
            .await
            .unwrap();
    }
    let got = api.get("cm-03").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "v");

    let page = api
        .list(&ListParams::default().labels("app=t").limit(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 10);
    let token = page.metadata.continue_.clone().expect("a continue token");
    assert_eq!(
        page.metadata.remaining_item_count, None,
        "selectors hide the remaining count"
    );
    let next = api
        .list(
            &ListParams::default()
                .labels("app=t")
                .limit(10)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(next.items[0].metadata.name.as_deref(), Some("cm-10"));

    let patch = serde_json::json!({"data": {"k": "patched"}});
    let patched = api
        .patch("cm-01", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "patched");

    api.delete("cm-02", &DeleteParams::default()).await.unwrap();
    let err = api.get("cm-02").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );

    let names = tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(names.len(), 25);
    assert_eq!(names[0], "cm-00");
    // The server owns a runtime, which may only be dropped outside async code.
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}

/// Upstream's NamespaceLifecycle: creates in a missing namespace are NotFound, in a
/// terminating one Forbidden; a namespace created a moment ago takes objects at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_respect_namespace_lifecycle() {
    use k8s_openapi::api::core::v1::Namespace;
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let err = missing
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect_err("no namespace");
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 404 && e.message == "namespaces \"missing\" not found"),
        "{err:?}"
    );

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for round in 0..20 {
        let name = format!("fresh-{round}");
        let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
        api.create(&PostParams::default(), &cm("a")).await.unwrap();
    }

    // No namespace controller runs here, so the deleted namespace stays Terminating
    // (its `kubernetes` finalizer is never removed).
    namespaces
        .delete("fresh-0", &DeleteParams::default())
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "fresh-0");
    let err = api
        .create(&PostParams::default(), &cm("b"))
        .await
        .expect_err("terminating");
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 403
            && e.message.contains("unable to create new content in namespace fresh-0 because it is being terminated")),
        "{err:?}"
    );
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}
