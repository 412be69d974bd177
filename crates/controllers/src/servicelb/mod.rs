//! ServiceLB: a load balancer made of the nodes themselves, as k3s' klipper-lb, but
//! without pods. A `type: LoadBalancer` Service with no `spec.loadBalancerClass` gets
//! the InternalIPs of the Ready nodes as `status.loadBalancer.ingress`; every node's
//! service proxy DNATs those addresses (and the ports on them) to the endpoints. The
//! status follows the nodes, and is cleared when the Service stops being a
//! LoadBalancer. With an address pool (`pool.rs`), each such Service gets an address
//! of its own from the pool instead.

mod pool;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::Result;

pub use pool::{AddressPool, PoolError};

/// Nodes with this label serve no load balancers (upstream's service controller).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The addresses of the nodes that serve load balancers: InternalIPs of Ready nodes
/// not excluded by label, sorted.
pub fn node_addresses(nodes: &[Arc<Node>]) -> Vec<String> {
    let mut ips = BTreeSet::new();
    for n in nodes {
        let excluded = n
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(EXCLUDE_LABEL));
        let status = n.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if excluded || !ready || n.metadata.deletion_timestamp.is_some() {
            continue;
        }
        for a in status
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
        {
            if a.type_ == "InternalIP" {
                ips.insert(a.address.clone());
            }
        }
    }
    ips.into_iter().collect()
}

/// The ingress IPs `svc` should have, or `None` when it is not ours to manage (another
/// implementation's `loadBalancerClass`, or being deleted).
pub fn desired_ingress(svc: &Service, node_ips: &[String]) -> Option<Vec<String>> {
    if svc.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Some(Vec::new());
    }
    if spec.load_balancer_class.is_some() {
        return None;
    }
    Some(node_ips.to_vec())
}

/// The ingress IPs `svc` has now (hostnames count as foreign: we only set IPs).
fn current_ingress(svc: &Service) -> Vec<Option<String>> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .map(|i| i.ip.clone())
        .collect()
}

/// How soon a Service without a pool address asks again.
const POOL_RETRY: Duration = Duration::from_secs(2);

fn key(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

struct Ctx {
    client: kube::Client,
    nodes: Store<Node>,
    services: Store<Service>,
    pool: AddressPool,
    /// Pool addresses given out by this process, by Service, held while one is chosen
    /// and written so that two Services reconciled at once never get the same one.
    claims: tokio::sync::Mutex<BTreeMap<String, IpAddr>>,
}

/// The pool address `svc` should have (None: none free), given the addresses the
/// other Services hold in their status or were just given.
fn pool_ingress(svc: &Service, ctx: &Ctx, claims: &mut BTreeMap<String, IpAddr>) -> Vec<String> {
    let me = key(svc);
    let services = ctx.services.state();
    let live: BTreeSet<String> = services.iter().map(|s| key(s)).collect();
    claims.retain(|k, _| live.contains(k));
    let mut taken: BTreeSet<IpAddr> = claims
        .iter()
        .filter(|(k, _)| **k != me)
        .map(|(_, ip)| *ip)
        .collect();
    for other in services.iter().filter(|s| key(s) != me) {
        taken.extend(
            current_ingress(other)
                .into_iter()
                .flatten()
                .filter_map(|ip| ip.parse::<IpAddr>().ok())
                .filter(|ip| ctx.pool.contains(*ip)),
        );
    }
    let has = current_ingress(svc)
        .into_iter()
        .flatten()
        .find_map(|ip| ip.parse().ok());
    let asks = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|ip| !ip.is_empty())
        .and_then(|ip| ip.parse().ok());
    match ctx.pool.assign(has, asks, &taken) {
        Some(ip) => {
            claims.insert(me, ip);
            vec![ip.to_string()]
        }
        None => {
            claims.remove(&me);
            tracing::warn!(service = %me, pool = %ctx.pool, requested = ?asks,
                "no free load balancer address in the pool; the Service stays pending");
            Vec::new()
        }
    }
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action> {
    let _ = ctx.nodes.wait_until_ready().await;
    let node_ips = node_addresses(&ctx.nodes.state());
    let Some(mut want) = desired_ingress(&svc, &node_ips) else {
        return Ok(Action::await_change());
    };
    let mut claims = ctx.claims.lock().await;
    let load_balancer = svc
        .spec
        .as_ref()
        .is_some_and(|s| s.type_.as_deref() == Some("LoadBalancer"));
    if !ctx.pool.is_empty() {
        if load_balancer {
            want = pool_ingress(&svc, &ctx, &mut claims);
        } else {
            claims.remove(&key(&svc));
        }
    }
    // A Service waiting for a pool address looks again soon: one may be freed by a
    // deletion, which does not wake this Service.
    let done = if load_balancer && want.is_empty() && !ctx.pool.is_empty() {
        Action::requeue(POOL_RETRY)
    } else {
        Action::await_change()
    };
    let have = current_ingress(&svc);
    if have.len() == want.len() && have.iter().zip(&want).all(|(h, w)| h.as_ref() == Some(w)) {
        return Ok(done);
    }
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let ingress: Vec<_> = want.iter().map(|ip| json!({"ip": ip})).collect();
    // A merge patch replaces the list; null removes it.
    let value = if ingress.is_empty() {
        serde_json::Value::Null
    } else {
        json!(ingress)
    };
    let patch = json!({"status": {"loadBalancer": {"ingress": value}}});
    Api::<Service>::namespaced(ctx.client.clone(), &ns)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(service = %format!("{ns}/{name}"), ingress = ?want, "load balancer status updated");
    Ok(done)
}

fn error_policy(_svc: Arc<Service>, err: &crate::Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "servicelb retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped. An empty `pool` gives Services the nodes' addresses.
pub async fn run(client: kube::Client, pool: AddressPool) {
    let (nodes, writer) = reflector::store::<Node>();
    // Every service is looked at again when the set of serving addresses changes
    // (not on every node heartbeat).
    let node_store = nodes.clone();
    let mut last: Option<Vec<String>> = None;
    let node_changes = reflector::reflector(
        writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(move |r| {
        let changed = r.is_ok() && {
            let now = node_addresses(&node_store.state());
            let changed = last.as_ref() != Some(&now);
            last = Some(now);
            changed
        };
        future::ready(changed.then_some(()))
    });
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let ctx = Arc::new(Ctx {
        client,
        nodes,
        services: controller.store(),
        pool,
        claims: Default::default(),
    });
    controller
        .reconcile_all_on(node_changes)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": labels},
                "status": {
                    "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .unwrap(),
        )
    }

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn ready_nodes_internal_ips_are_the_ingress() {
        let nodes = [
            node("b", "192.0.2.20", true, json!({})),
            node("a", "192.0.2.10", true, json!({})),
            node("down", "192.0.2.30", false, json!({})),
            node("out", "192.0.2.40", true, json!({EXCLUDE_LABEL: ""})),
        ];
        let ips = node_addresses(&nodes);
        assert_eq!(ips, ["192.0.2.10", "192.0.2.20"]);

        let lb = svc(json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
        assert_eq!(desired_ingress(&lb, &ips), Some(ips.clone()));
        // A single node: its own address.
        let single = node_addresses(&nodes[..1]);
        assert_eq!(desired_ingress(&lb, &single).unwrap(), ["192.0.2.20"]);
        // No Ready node: nothing (kubectl shows <pending>).
        assert_eq!(
            desired_ingress(&lb, &node_addresses(&nodes[2..3])),
            Some(vec![])
        );
    }

    #[test]
    fn other_classes_are_left_alone_and_other_types_cleared() {
        let ips = vec!["192.0.2.10".to_string()];
        let classed = svc(
            json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/lb", "ports": [{"port": 80}]}),
        );
        assert_eq!(desired_ingress(&classed, &ips), None);
        let cluster_ip = svc(json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        assert_eq!(desired_ingress(&cluster_ip, &ips), Some(vec![]));
        let node_port = svc(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        assert_eq!(desired_ingress(&node_port, &ips), Some(vec![]));
    }
}
