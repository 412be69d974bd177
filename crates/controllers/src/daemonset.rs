//! The DaemonSet controller: one pod on every eligible node (node selector, required
//! node affinity, tolerated taints), placed by the scheduler through a node-affinity
//! term naming the node; rolling updates replace at most `maxUnavailable` pods at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;

use crate::events::{EventType, Recorder, reference};
use crate::pods::{
    controller_ref, ensure_revision, is_active, is_controlled_by, is_ready, pod_from_template,
    template_hash,
};
use crate::{Error, Result};

pub const HASH_LABEL: &str = "controller-revision-hash";

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
}

/// The tolerations upstream adds to every daemon pod.
fn default_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

fn tolerated(taint: &Taint, tols: &[Toleration]) -> bool {
    tols.iter().any(|t| {
        t.effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect)
            && t.key
                .as_deref()
                .is_none_or(|k| k.is_empty() || k == taint.key)
            && (t.operator.as_deref() == Some("Exists")
                || t.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default())
    })
}

/// Whether the daemon's pods belong on `node`.
fn eligible(ds: &DaemonSet, node: &Node) -> bool {
    if node.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let spec = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let mut tols = spec.tolerations.clone().unwrap_or_default();
    tols.extend(default_tolerations());
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerated(t, &tols))
}

/// The node a daemon pod is for: its nodeName, or the node its affinity names.
fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

fn daemon_pod(ds: &DaemonSet, node: &str, hash: &str) -> Result<Pod> {
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let labels = BTreeMap::from([(HASH_LABEL.to_string(), hash.to_string())]);
    let mut pod = pod_from_template(&template, &format!("{name}-"), controller_ref(ds), &labels);
    let spec = pod
        .spec
        .as_mut()
        .ok_or_else(|| Error::Other("daemonset has no pod template spec".into()))?;
    let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}});
    spec.affinity =
        Some(serde_json::from_value(affinity).map_err(|e| Error::Other(e.to_string()))?);
    spec.tolerations
        .get_or_insert_with(Vec::new)
        .extend(default_tolerations());
    Ok(pod)
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let name = ds.metadata.name.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let hash = template_hash(&template);
    ensure_revision(&ctx.client, ds.as_ref(), &template, &hash).await?;
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let nodes = nodes.list(&ListParams::default()).await?.items;
    let pods: Vec<Pod> = pods_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid) && is_active(p))
        .collect();
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in &pods {
        if let Some(n) = target_node(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let reference = reference(ds.as_ref());
    let (mut desired, mut scheduled, mut ready, mut updated, mut misscheduled) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let max_unavailable = match ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
    {
        Some(IntOrString::Int(n)) => n.max(1) as usize,
        Some(IntOrString::String(p)) => {
            ((p.trim_end_matches('%').parse::<f64>().unwrap_or(0.0) / 100.0) * nodes.len() as f64)
                .floor()
                .max(1.0) as usize
        }
        None => 1,
    };
    let on_delete = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    let mut unavailable = 0;
    let mut outdated = Vec::new();
    for node in &nodes {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let here = by_node.remove(&node_name).unwrap_or_default();
        if !eligible(&ds, node) {
            misscheduled += here.len();
            for p in here {
                let _ = pods_api
                    .delete(
                        p.metadata.name.as_deref().unwrap_or_default(),
                        &DeleteParams::default(),
                    )
                    .await;
            }
            continue;
        }
        desired += 1;
        match here.as_slice() {
            [] => {
                let pod = daemon_pod(&ds, &node_name, &hash)?;
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        let msg = format!("Created pod: {}", p.metadata.name.unwrap_or_default());
                        ctx.recorder
                            .record(&reference, EventType::Normal, "SuccessfulCreate", &msg)
                            .await;
                    }
                    Err(e) => {
                        ctx.recorder
                            .record(
                                &reference,
                                EventType::Warning,
                                "FailedCreate",
                                &format!("Error creating: {e}"),
                            )
                            .await
                    }
                }
                unavailable += 1;
            }
            [p, extra @ ..] => {
                scheduled += 1;
                for x in extra {
                    let _ = pods_api
                        .delete(
                            x.metadata.name.as_deref().unwrap_or_default(),
                            &DeleteParams::default(),
                        )
                        .await;
                }
                if is_ready(p) {
                    ready += 1;
                } else {
                    unavailable += 1;
                }
                let current =
                    p.metadata.labels.as_ref().and_then(|l| l.get(HASH_LABEL)) == Some(&hash);
                if current {
                    updated += 1;
                } else {
                    outdated.push(*p);
                }
            }
        }
    }
    // Pods for nodes that no longer exist.
    for p in by_node.values().flatten() {
        let _ = pods_api
            .delete(
                p.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await;
    }
    if !on_delete {
        // Replace outdated pods, not-ready ones first, within the unavailability budget.
        outdated.sort_by_key(|p| is_ready(p));
        for p in outdated {
            if is_ready(p) && unavailable >= max_unavailable {
                break;
            }
            let _ = pods_api
                .delete(
                    p.metadata.name.as_deref().unwrap_or_default(),
                    &DeleteParams::default(),
                )
                .await;
            if is_ready(p) {
                unavailable += 1;
            }
        }
    }
    let status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": scheduled,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": desired.saturating_sub(ready),
        "updatedNumberScheduled": updated,
        "observedGeneration": ds.metadata.generation,
    });
    let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn error_policy(_ds: Arc<DaemonSet>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "daemonset controller retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped.
pub async fn run(client: kube::Client) {
    let dss: Api<DaemonSet> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    let controller = Controller::new(dss, watcher::Config::default());
    let store = controller.store();
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "daemonset-controller"),
        client,
    });
    controller
        .owns(pods, watcher::Config::default())
        .watches(nodes, watcher::Config::default(), move |_node| {
            store
                .state()
                .iter()
                .map(|d| ObjectRef::from_obj(d.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
