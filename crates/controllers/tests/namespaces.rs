//! The namespace controller against the real API server: deleting a namespace
//! removes its content, waits for finalizers with upstream's conditions, and then
//! removes the namespace.

mod common;

use common::{server, start, stop, wait};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn condition(ns: &Namespace, type_: &str) -> Option<(String, String)> {
    ns.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_removes_its_content_then_the_namespace() {
    let (s, client) = server().await;
    let _controllers = start(&client, &["namespace"]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    // The API server adds the `kubernetes` finalizer itself; spelled out so this test
    // does not depend on that.
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": "doomed"}, "spec": {"finalizers": ["kubernetes"]}}),
    )
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "doomed");
    for i in 0..3 {
        let cm = serde_json::from_value(json!({"metadata": {"name": format!("cm{i}")}})).unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let held = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();
    let secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();

    // Everything but the object with a finalizer goes; the namespace says why it stays.
    let ns = wait("conditions naming the finalizer", || {
        let namespaces = namespaces.clone();
        async move {
            let ns = namespaces.get("doomed").await.ok()?;
            let (status, _) = condition(&ns, "NamespaceFinalizersRemaining")?;
            (status == "True").then_some(ns)
        }
    })
    .await;
    assert_eq!(
        ns.status.as_ref().unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert_eq!(
        condition(&ns, "NamespaceFinalizersRemaining").unwrap().1,
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(
        condition(&ns, "NamespaceContentRemaining").unwrap().1,
        "Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert!(secrets.get_opt("s").await.unwrap().is_none());
    let left: Vec<String> = cms
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["held".to_string()]);

    // New content is refused while the namespace terminates.
    let late = serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap();
    let err = cms.create(&PostParams::default(), &late).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(e) if e.code == 403 && e.reason == "Forbidden"));

    // Releasing the finalizer lets the namespace go.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait("the namespace to be gone", || {
        let namespaces = namespaces.clone();
        async move {
            namespaces
                .get_opt("doomed")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        }
    })
    .await;
    stop(s).await;
}
