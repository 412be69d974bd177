//! ServiceLB with an address pool: each LoadBalancer Service gets its own address,
//! never one another Service holds; an exhausted pool leaves Services pending until
//! an address is freed.

mod support;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{server_with_nodes, stop, wait};

fn lb(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}
    }))
    .unwrap()
}

fn ingress(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_addresses_are_unique_and_reused_once_freed() {
    let (s, client) = server_with_nodes(1).await;
    let pool = "192.0.2.10-192.0.2.11".parse().unwrap();
    tokio::spawn(controllers::servicelb::run(client.clone(), pool));
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b", "c"] {
        services
            .create(&PostParams::default(), &lb(name))
            .await
            .unwrap();
    }
    // Two get an address each, the third waits.
    let given = wait("two pool addresses", || async {
        let list = services.list(&Default::default()).await.ok()?;
        let given: Vec<(String, Vec<String>)> = list
            .items
            .iter()
            .filter(|s| s.metadata.name.as_deref() != Some("kubernetes"))
            .map(|s| (s.metadata.name.clone().unwrap(), ingress(s)))
            .collect();
        (given.iter().filter(|(_, ips)| ips.len() == 1).count() == 2).then_some(given)
    })
    .await;
    let ips: BTreeSet<&String> = given.iter().flat_map(|(_, ips)| ips).collect();
    assert_eq!(
        ips.into_iter().cloned().collect::<Vec<_>>(),
        ["192.0.2.10", "192.0.2.11"],
        "{given:?}"
    );
    let (pending, _) = given.iter().find(|(_, ips)| ips.is_empty()).unwrap();
    let (holder, freed) = given.iter().find(|(_, ips)| !ips.is_empty()).unwrap();

    // Deleting a holder frees its address for the pending one.
    services
        .delete(holder, &DeleteParams::default())
        .await
        .unwrap();
    wait("the freed address reused", || async {
        let svc = services.get(pending).await.ok()?;
        (ingress(&svc) == *freed).then_some(())
    })
    .await;

    // A Service that is no longer a LoadBalancer gives its address back.
    let patch = json!({"spec": {"type": "ClusterIP"}});
    services
        .patch(pending, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait("status cleared", || async {
        let svc = services.get(pending).await.ok()?;
        ingress(&svc).is_empty().then_some(())
    })
    .await;
    stop(s).await;
}
