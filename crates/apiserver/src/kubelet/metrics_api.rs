//! `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics, what `kubectl top` reads,
//! served in place of a metrics-server: each request asks the nodes' kubelets for
//! their `/stats/summary` (whose CPU rates the kubelet keeps over a window of its own
//! samples) and reshapes it. A node or pod without a CPU rate yet is left out, as
//! metrics-server leaves out what it has scraped only once.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use super::{KubeletClient, kubelet_address};
use crate::error::{ApiError, Result};
use crate::registry::ListPage;
use crate::state::ApiState;

/// What the kubelet's samples cover (its sampling period).
const WINDOW: &str = "10s";
/// A kubelet that does not answer within this is left out rather than stalling `top`.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

fn cpu(usage: &Value) -> Option<String> {
    Some(format!("{}n", usage["usageNanoCores"].as_u64()?))
}

fn memory(usage: &Value) -> Option<String> {
    Some(format!("{}Ki", usage["workingSetBytes"].as_u64()? / 1024))
}

fn usage(cpu_v: &Value, mem_v: &Value) -> Option<Value> {
    Some(json!({"cpu": cpu(cpu_v)?, "memory": memory(mem_v)?}))
}

/// The summaries of every node whose kubelet answered, with the node objects.
async fn summaries(state: &ApiState) -> Result<Vec<(Value, Value)>> {
    let client: KubeletClient = state
        .kubelet
        .clone()
        .ok_or_else(|| ApiError::unavailable("this server has no kubelet client configured"))?;
    let nodes_info = state
        .registry
        .resources
        .get("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let all = crate::registry::ListParams {
        labels: api::selectors::LabelSelector::parse("").expect("empty selector"),
        fields: Default::default(),
        limit: 0,
        continue_token: None,
        resource_version: None,
        resource_version_match: None,
    };
    let nodes = state.registry.list(&nodes_info, None, &all).await?.items;
    let scrapes = nodes.into_iter().map(|node| {
        let client = client.clone();
        async move {
            let addr = kubelet_address(&node)?;
            let fetch = client.get_json(addr, "/stats/summary");
            let summary = tokio::time::timeout(SCRAPE_TIMEOUT, fetch)
                .await
                .ok()?
                .ok()?;
            Some((node, summary))
        }
    });
    Ok(join_all(scrapes).await.into_iter().flatten().collect())
}

fn node_metrics(node: &Value, summary: &Value) -> Option<Value> {
    let s = &summary["node"];
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": node.pointer("/metadata/name")?,
            "creationTimestamp": api::meta::now(),
            "labels": node.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        },
        "timestamp": s["cpu"]["time"],
        "window": WINDOW,
        "usage": usage(&s["cpu"], &s["memory"])?,
    }))
}

fn pod_metrics(pod: &Value, labels: Value) -> Option<Value> {
    let containers: Option<Vec<Value>> = pod["containers"]
        .as_array()?
        .iter()
        .map(|c| Some(json!({"name": c["name"], "usage": usage(&c["cpu"], &c["memory"])?})))
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": pod["podRef"]["name"],
            "namespace": pod["podRef"]["namespace"],
            "creationTimestamp": api::meta::now(),
            "labels": labels,
        },
        "timestamp": pod["cpu"]["time"],
        "window": WINDOW,
        "containers": containers?,
    }))
}

/// The metrics of `plural` (nodes or pods) in `ns`, optionally only `name`,
/// filtered by a label selector.
pub async fn metrics(
    state: &ApiState,
    plural: &str,
    ns: Option<&str>,
    name: Option<&str>,
    selector: &api::selectors::LabelSelector,
) -> Result<ListPage> {
    let mut items = Vec::new();
    let pods_info = state.registry.resources.get("", "v1", "pods");
    for (node, summary) in summaries(state).await? {
        if plural == "nodes" {
            let labels = node.pointer("/metadata/labels").and_then(Value::as_object);
            if selector.matches(labels)
                && let Some(m) = node_metrics(&node, &summary)
            {
                items.push(m);
            }
            continue;
        }
        for pod in summary["pods"].as_array().into_iter().flatten() {
            let (pod_ns, pod_name) = (&pod["podRef"]["namespace"], &pod["podRef"]["name"]);
            let in_scope = ns.is_none_or(|n| pod_ns == n) && name.is_none_or(|n| pod_name == n);
            if !in_scope {
                continue;
            }
            // The pod's labels come from the API object; a pod gone from the API is skipped.
            let Some(info) = pods_info.as_ref() else {
                continue;
            };
            let Ok(obj) = state
                .registry
                .get(info, pod_ns.as_str(), pod_name.as_str().unwrap_or_default())
                .await
            else {
                continue;
            };
            let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
            if selector.matches(labels)
                && let Some(m) =
                    pod_metrics(pod, labels.cloned().map(Value::Object).unwrap_or(json!({})))
            {
                items.push(m);
            }
        }
    }
    if plural == "nodes"
        && let Some(n) = name
    {
        items.retain(|m| m.pointer("/metadata/name").and_then(Value::as_str) == Some(n));
    }
    items.sort_by_key(|m| {
        let s = |p: &str| {
            m.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (s("/metadata/namespace"), s("/metadata/name"))
    });
    Ok(ListPage {
        items,
        ..Default::default()
    })
}
