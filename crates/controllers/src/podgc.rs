//! Pod garbage collection: terminated pods beyond the threshold (oldest first), pods
//! bound to nodes that no longer exist, and unscheduled pods being deleted.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams};

use crate::Result;

/// Runs every `period` until dropped.
pub async fn run(client: kube::Client, threshold: usize, period: Duration) {
    loop {
        if let Err(e) = collect(&client, threshold).await {
            tracing::debug!(error = %e, "pod GC pass failed");
        }
        tokio::time::sleep(period).await;
    }
}

async fn force_delete(client: &kube::Client, p: &Pod) {
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        p.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let _ = api
        .delete(p.metadata.name.as_deref().unwrap_or_default(), &dp)
        .await;
}

pub async fn collect(client: &kube::Client, threshold: usize) -> Result<()> {
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let all = pods.list(&ListParams::default()).await?.items;
    let node_names: HashSet<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();

    let mut terminated: Vec<&Pod> = all
        .iter()
        .filter(|p| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect();
    if terminated.len() > threshold {
        terminated.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let excess = terminated.len() - threshold;
        for p in &terminated[..excess] {
            force_delete(client, p).await;
        }
    }
    for p in &all {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty());
        match node {
            Some(n) if !node_names.contains(n) => {
                tracing::info!(pod = ?p.metadata.name, node = n, "deleting pod bound to a missing node");
                force_delete(client, p).await;
            }
            None if p.metadata.deletion_timestamp.is_some() => force_delete(client, p).await,
            _ => {}
        }
    }
    Ok(())
}
