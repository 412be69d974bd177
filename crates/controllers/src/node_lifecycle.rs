//! Node lifecycle: a node whose Lease stops being renewed goes Unknown after the grace
//! period and gets the `node.kubernetes.io/unreachable` taints (a NotReady node the
//! `not-ready` ones); pods on NoExecute-tainted nodes are evicted when they do not
//! tolerate the taint, or once their `tolerationSeconds` have passed.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::Result;

pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

#[derive(Clone, Debug)]
pub struct LifecycleOptions {
    /// A node silent for longer is Unknown (upstream's --node-monitor-grace-period).
    pub grace_period: Duration,
    /// How often nodes are checked (--node-monitor-period).
    pub period: Duration,
}

fn ready_condition(n: &Node) -> Option<(String, Option<jiff::Timestamp>)> {
    let c = n
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .clone();
    Some((c.status, c.last_heartbeat_time.map(|t| t.0)))
}

/// The taint keys a node should carry given its health.
fn wanted_taint(stale: bool, ready: Option<&str>) -> Option<&'static str> {
    match (stale, ready) {
        (true, _) | (_, Some("Unknown")) => Some(UNREACHABLE),
        (_, Some("False")) => Some(NOT_READY),
        _ => None,
    }
}

/// Upstream's toleration match for NoExecute taints.
fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key_ok = t
        .key
        .as_deref()
        .is_none_or(|k| k.is_empty() || k == taint.key);
    let value_ok = match t.operator.as_deref() {
        Some("Exists") => true,
        _ => t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
    };
    effect_ok && key_ok && value_ok
}

/// Runs until dropped.
pub async fn run(client: kube::Client, opts: LifecycleOptions) {
    loop {
        if let Err(e) = check_all(&client, &opts).await {
            tracing::debug!(error = %e, "node lifecycle pass failed");
        }
        tokio::time::sleep(opts.period).await;
    }
}

async fn check_all(client: &kube::Client, opts: &LifecycleOptions) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let renewed: HashMap<String, jiff::Timestamp> = leases
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|l| Some((l.metadata.name?, l.spec?.renew_time?.0)))
        .collect();
    let now = jiff::Timestamp::now();
    let grace = jiff::SignedDuration::try_from(opts.grace_period)
        .unwrap_or(jiff::SignedDuration::from_secs(40));
    for node in nodes.list(&ListParams::default()).await?.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = ready_condition(&node);
        let last = renewed
            .get(&name)
            .copied()
            .or(ready.as_ref().and_then(|r| r.1));
        let created = node
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(now);
        let stale = now.duration_since(last.unwrap_or(created)) > grace;
        if stale && ready.as_ref().map(|r| r.0.as_str()) != Some("Unknown") {
            mark_unknown(&nodes, &node).await?;
            mark_pods_not_ready(client, &name).await?;
        }
        let ready_status = if stale {
            Some("Unknown".to_string())
        } else {
            ready.map(|r| r.0)
        };
        let want = wanted_taint(stale, ready_status.as_deref());
        let taints = sync_taints(&nodes, &node, want).await?;
        evict(client, &name, &taints, now).await?;
    }
    Ok(())
}

async fn mark_unknown(nodes: &Api<Node>, node: &Node) -> Result<()> {
    let now = Time(jiff::Timestamp::now());
    let kinds = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
    let conditions: Vec<_> = kinds
        .iter()
        .map(|k| {
            let heartbeat = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == *k))
                .and_then(|c| c.last_heartbeat_time.clone());
            json!({"type": k, "status": "Unknown", "reason": "NodeStatusUnknown",
                   "message": "Kubelet stopped posting node status.",
                   "lastHeartbeatTime": heartbeat, "lastTransitionTime": now})
        })
        .collect();
    let name = node.metadata.name.clone().unwrap_or_default();
    nodes
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Strategic(&json!({"status": {"conditions": conditions}})),
        )
        .await?;
    tracing::info!(node = %name, "node stopped reporting; marked Unknown");
    Ok(())
}

/// Pods on a lost node are no longer Ready (upstream's MarkPodsNotReady).
async fn mark_pods_not_ready(client: &kube::Client, node: &str) -> Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let now = Time(jiff::Timestamp::now());
    for p in pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?
        .items
    {
        let api: Api<Pod> = Api::namespaced(
            client.clone(),
            p.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]}});
        let _ = api
            .patch_status(
                p.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await;
    }
    Ok(())
}

/// Makes the node's health taints match `want`; returns its NoExecute health taints.
async fn sync_taints(nodes: &Api<Node>, node: &Node, want: Option<&str>) -> Result<Vec<Taint>> {
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let is_health = |t: &Taint| t.key == UNREACHABLE || t.key == NOT_READY;
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !is_health(t) || Some(t.key.as_str()) == want)
        .cloned()
        .collect();
    if let Some(key) = want {
        for effect in ["NoSchedule", "NoExecute"] {
            if !next.iter().any(|t| t.key == key && t.effect == effect) {
                next.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == "NoExecute").then(|| Time(jiff::Timestamp::now())),
                    value: None,
                });
            }
        }
    }
    if next != current {
        let name = node.metadata.name.clone().unwrap_or_default();
        nodes
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"taints": next}})),
            )
            .await?;
    }
    Ok(next
        .into_iter()
        .filter(|t| is_health(t) && t.effect == "NoExecute")
        .collect())
}

/// Evicts pods that may no longer stay on a NoExecute-tainted node.
async fn evict(
    client: &kube::Client,
    node: &str,
    taints: &[Taint],
    now: jiff::Timestamp,
) -> Result<()> {
    if taints.is_empty() {
        return Ok(());
    }
    let pods: Api<Pod> = Api::all(client.clone());
    for p in pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?
        .items
    {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let tols = p
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let due = taints.iter().any(|taint| {
            let matching: Vec<&Toleration> = tols.iter().filter(|t| tolerates(t, taint)).collect();
            if matching.is_empty() {
                return true;
            }
            // The shortest tolerationSeconds applies; none means forever.
            let secs = matching.iter().filter_map(|t| t.toleration_seconds).min();
            let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
            secs.is_some_and(|s| now >= added + jiff::SignedDuration::from_secs(s.max(0)))
        });
        if due {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            tracing::info!(pod = %format!("{ns}/{name}"), node, "evicting pod from tainted node");
            // Upstream's taint-eviction controller announces the deletion on the pod.
            crate::events::Recorder::new(client.clone(), "taint-eviction-controller")
                .record(
                    &crate::events::reference(&p),
                    crate::events::EventType::Normal,
                    "TaintManagerEviction",
                    &format!("Marking for deletion Pod {ns}/{name}"),
                )
                .await;
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
    }
    Ok(())
}
