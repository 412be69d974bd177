//! The endpoints, endpointslice, serviceaccount and root-CA controllers against the
//! real API server, with hollow nodes running the pods.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::{server_with_nodes, stop, wait};

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_root_ca_in_every_namespace() {
    let (s, client) = server_with_nodes(0).await;
    tokio::spawn(controllers::serviceaccount::run(
        client.clone(),
        Some("-----BEGIN CERTIFICATE-----\nx\n".into()),
    ));
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "team-a"}})),
    )
    .await
    .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    wait("default SA", || async {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    sas.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    wait("default SA recreated", || async {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let cm = wait("root CA", || async {
        cms.get_opt("kube-root-ca.crt").await.ok().flatten()
    })
    .await;
    assert!(cm.data.unwrap()["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"));
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_endpoints_follow_pods() {
    let (s, client) = server_with_nodes(1).await;
    tokio::spawn(controllers::endpoints::run(client.clone()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "web-port"}]}});
    svcs.create(&PostParams::default(), &from(svc))
        .await
        .unwrap();
    for i in 0..2 {
        let pod = json!({"metadata": {"name": format!("web-{i}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "hollow-node-0", "containers": [{"name": "c", "image": "nginx",
                "ports": [{"name": "web-port", "containerPort": 8080}]}]}});
        pods.create(&PostParams::default(), &from(pod))
            .await
            .unwrap();
    }
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let ready = |n: usize| {
        let eps = eps.clone();
        async move {
            let e = eps.get_opt("web").await.ok().flatten()?;
            let subsets = e.subsets.unwrap_or_default();
            let addrs: usize = subsets
                .iter()
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum();
            (addrs == n).then_some(subsets)
        }
    };
    let subsets = wait("two ready addresses", || ready(2)).await;
    assert_eq!(
        subsets[0].ports.as_ref().unwrap()[0].port,
        8080,
        "named targetPort resolved"
    );
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    wait("an endpointslice with two endpoints", || async {
        let l = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        (l.items.len() == 1 && l.items[0].endpoints.len() == 2).then_some(())
    })
    .await;
    pods.delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    wait("one address left", || ready(1)).await;
    stop(s).await;
}
