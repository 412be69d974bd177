//! `status.loadBalancer.ingress` of the served Ingresses: the addresses of the Ready
//! nodes whose controller listens (their `k8rs-ingress` EndpointSlices), so `kubectl
//! get ingress` shows an ADDRESS. Only the control plane runs this, so nodes never
//! fight over it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::Notify;

use crate::backends::SERVICE_NAME_LABEL;
use crate::publish::{NAMESPACE, SERVICE};

/// The addresses of the controller's ready endpoints on Ready nodes, sorted.
pub fn addresses(slices: &[Arc<EndpointSlice>], nodes: &[Arc<Node>]) -> Vec<String> {
    let ready: HashMap<&str, bool> = nodes
        .iter()
        .filter_map(|n| {
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True");
            Some((n.metadata.name.as_deref()?, ready))
        })
        .collect();
    let mut found = BTreeSet::new();
    for slice in slices {
        let labels = slice.metadata.labels.as_ref();
        if labels
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(String::as_str)
            != Some(SERVICE)
        {
            continue;
        }
        for ep in &slice.endpoints {
            let endpoint_ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            let node_ready = ep
                .node_name
                .as_deref()
                .is_some_and(|n| ready.get(n).copied().unwrap_or(false));
            if endpoint_ready && node_ready {
                found.extend(
                    ep.addresses
                        .iter()
                        .filter_map(|a| a.parse::<std::net::IpAddr>().ok()),
                );
            }
        }
    }
    found.into_iter().map(|ip| ip.to_string()).collect()
}

/// The IPs an Ingress's status lists now.
fn current(ingress: &Ingress) -> Vec<String> {
    let lb = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref());
    lb.and_then(|lb| lb.ingress.as_ref())
        .map(|list| list.iter().filter_map(|i| i.ip.clone()).collect())
        .unwrap_or_default()
}

/// The Ingresses whose status must change, with the addresses to write: the served
/// ones whose addresses differ from `want`, and those no longer served (another class
/// now) that still list only our addresses, which are cleared so that they do not
/// advertise a controller that ignores them.
pub fn updates<'a>(
    ingresses: &'a [Arc<Ingress>],
    classes: &[Arc<IngressClass>],
    want: &[String],
) -> Vec<(&'a Ingress, Vec<String>)> {
    let served = crate::table::served(ingresses, classes);
    let is_served = |i: &Ingress| served.iter().any(|s| std::ptr::eq(*s, i));
    let mut out: Vec<(&Ingress, Vec<String>)> = served
        .iter()
        .filter(|i| current(i) != want)
        .map(|i| (*i, want.to_vec()))
        .collect();
    for ing in ingresses.iter().map(Arc::as_ref).filter(|i| !is_served(i)) {
        let have = current(ing);
        if !have.is_empty() && have.iter().all(|ip| want.contains(ip)) {
            out.push((ing, Vec::new()));
        }
    }
    out
}

/// Writes the status of every Ingress [`updates`] names, until dropped.
pub async fn run(client: kube::Client) {
    let changed = Arc::new(Notify::new());
    let all = watcher::Config::default;
    let ours = all().labels(&format!("{SERVICE_NAME_LABEL}={SERVICE}"));
    let (ingresses, t1) = crate::reflect(Api::<Ingress>::all(client.clone()), all(), &changed);
    let (classes, t2) = crate::reflect(Api::<IngressClass>::all(client.clone()), all(), &changed);
    let slices_api = Api::<EndpointSlice>::namespaced(client.clone(), NAMESPACE);
    let (slices, t3) = crate::reflect(slices_api, ours, &changed);
    let (nodes, t4) = crate::reflect(Api::<Node>::all(client.clone()), all(), &changed);
    let _stop = crate::AbortOnDrop(vec![t1, t2, t3, t4]);
    for ready in [
        ingresses.wait_until_ready().await,
        classes.wait_until_ready().await,
        slices.wait_until_ready().await,
        nodes.wait_until_ready().await,
    ] {
        if ready.is_err() {
            return;
        }
    }
    loop {
        let want = addresses(&slices.state(), &nodes.state());
        let (all_ingresses, all_classes) = (ingresses.state(), classes.state());
        let mut failed = false;
        for (ing, ips) in updates(&all_ingresses, &all_classes, &want) {
            let (Some(ns), Some(name)) = (&ing.metadata.namespace, &ing.metadata.name) else {
                continue;
            };
            let list: Vec<_> = ips.iter().map(|ip| json!({"ip": ip})).collect();
            let patch = json!({"status": {"loadBalancer": {"ingress": list}}});
            let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                // Deleted meanwhile, or the API is away: the next change or retry fixes it.
                tracing::debug!(ingress = %format!("{ns}/{name}"), error = %e, "cannot write ingress status");
                failed = true;
            }
        }
        if failed {
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        } else {
            changed.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_endpoints_on_ready_nodes_are_the_addresses() {
        let node = |name: &str, ready: &str| -> Arc<Node> {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": name},
                    "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
                .unwrap(),
            )
        };
        let slice = |node: &str, ip: &str, ready: bool| -> Arc<EndpointSlice> {
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": format!("k8rs-ingress-{node}"), "namespace": NAMESPACE,
                        "labels": {SERVICE_NAME_LABEL: SERVICE}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}}],
                }))
                .unwrap(),
            )
        };
        let nodes = [
            node("a", "True"),
            node("b", "True"),
            node("down", "Unknown"),
        ];
        let slices = [
            slice("b", "10.0.0.9", true),
            slice("a", "10.0.0.10", true),
            slice("down", "10.0.0.11", true),
            slice("gone", "10.0.0.12", true),
        ];
        // Sorted as addresses, not as strings.
        assert_eq!(addresses(&slices, &nodes), ["10.0.0.9", "10.0.0.10"]);
        let not_ready = [slice("a", "10.0.0.10", false)];
        assert!(addresses(&not_ready, &nodes).is_empty());
    }

    #[test]
    fn ingresses_that_leave_our_class_lose_our_addresses() {
        let ingress = |name: &str, class: &str, ips: &[&str]| -> Arc<Ingress> {
            let lb: Vec<_> = ips.iter().map(|ip| json!({"ip": ip})).collect();
            Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"ingressClassName": class,
                             "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
                    "status": {"loadBalancer": {"ingress": lb}},
                }))
                .unwrap(),
            )
        };
        let classes = [Arc::new(crate::class::default_class())];
        let want = vec!["10.0.0.9".to_string()];
        let ingresses = [
            ingress("ours-stale", "k8rs", &[]),
            ingress("ours-current", "k8rs", &["10.0.0.9"]),
            ingress("left", "other", &["10.0.0.9"]),
            ingress("foreign", "other", &["203.0.113.5"]),
        ];
        let got: Vec<(String, Vec<String>)> = updates(&ingresses, &classes, &want)
            .into_iter()
            .map(|(i, ips)| (i.metadata.name.clone().unwrap(), ips))
            .collect();
        assert_eq!(
            got,
            [
                ("ours-stale".to_string(), want.clone()),
                ("left".to_string(), vec![])
            ]
        );
    }
}
