//! Node IPAM: every node gets a podCIDR carved from `--cluster-cidr` (a /24 each by
//! default), which its CNI plugin hands out pod addresses from.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use parking_lot::Mutex;
use serde_json::json;

use crate::{Error, Result};

struct Ctx {
    client: kube::Client,
    cluster: IpNet,
    mask: u8,
    nodes: Store<Node>,
    /// CIDRs handed out but maybe not yet visible in the node cache.
    pending: Mutex<HashSet<IpNet>>,
}

fn pod_cidrs(n: &Node) -> Vec<String> {
    let spec = n.spec.as_ref();
    let mut v: Vec<String> = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if let Some(c) = spec
        .and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        && !v.contains(&c)
    {
        v.push(c);
    }
    v
}

async fn reconcile(node: Arc<Node>, ctx: Arc<Ctx>) -> Result<Action> {
    if !pod_cidrs(&node).is_empty() || node.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    let subnets = ctx
        .cluster
        .subnets(ctx.mask)
        .map_err(|e| Error::Other(format!("--cluster-cidr: {e}")))?;
    // Choosing and reserving under one lock: reconciles of different nodes run at once.
    let free = {
        let mut pending = ctx.pending.lock();
        let used: HashSet<IpNet> = ctx
            .nodes
            .state()
            .iter()
            .flat_map(|n| pod_cidrs(n))
            .filter_map(|c| c.parse().ok())
            .chain(pending.iter().copied())
            .collect();
        let Some(free) = subnets.into_iter().find(|s| !used.contains(s)) else {
            return Err(Error::Other(format!(
                "no podCIDR left in {} for node {name}",
                ctx.cluster
            )));
        };
        pending.insert(free);
        free
    };
    let api: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"spec": {"podCIDR": free.to_string(), "podCIDRs": [free.to_string()]}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(node = %name, cidr = %free, "assigned podCIDR");
    Ok(Action::await_change())
}

fn error_policy(_n: Arc<Node>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %err, "node IPAM retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped. `mask` is the size of each node's podCIDR.
pub async fn run(client: kube::Client, cluster: IpNet, mask: u8) {
    let api: Api<Node> = Api::all(client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    let nodes = controller.store();
    let ctx = Arc::new(Ctx {
        client,
        cluster,
        mask,
        nodes,
        pending: Mutex::new(HashSet::new()),
    });
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
