//! The StatefulSet controller: pods with stable names (`<set>-<ordinal>`) and stable
//! claims from `volumeClaimTemplates`, created in order (each after the previous is
//! Running and Ready) or all at once (`Parallel`), removed from the highest ordinal,
//! and rolled to a new template from the highest ordinal down to `partition`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use crate::events::{EventType, Recorder, reference};
use crate::pods::{
    controller_ref, ensure_revision, is_active, is_controlled_by, is_ready, phase, template_hash,
};
use crate::{Error, Result};

pub const HASH_LABEL: &str = "controller-revision-hash";
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
}

fn ordinal(set: &str, pod: &Pod) -> Option<i32> {
    pod.metadata
        .name
        .as_deref()?
        .strip_prefix(&format!("{set}-"))?
        .parse()
        .ok()
}

fn set_pod(sts: &StatefulSet, i: i32, hash: &str) -> Pod {
    let name = sts.metadata.name.clone().unwrap_or_default();
    let spec = sts.spec.clone().unwrap_or_default();
    let template = spec.template;
    let meta = template.metadata.unwrap_or_default();
    let pod_name = format!("{name}-{i}");
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), i.to_string());
    labels.insert(HASH_LABEL.into(), hash.into());
    let mut pod_spec = template.spec.unwrap_or_default();
    pod_spec.hostname = Some(pod_name.clone());
    if !spec.service_name.as_deref().unwrap_or_default().is_empty() {
        pod_spec.subdomain = spec.service_name.clone();
    }
    for claim in spec.volume_claim_templates.iter().flatten() {
        let cname = claim.metadata.name.clone().unwrap_or_default();
        let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
        volumes.retain(|v| v.name != cname);
        volumes.push(Volume {
            name: cname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{cname}-{pod_name}"),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![controller_ref(sts)]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// The claims of ordinal `i`, created when missing (they outlive the pods).
async fn ensure_claims(client: &kube::Client, sts: &StatefulSet, i: i32) -> Result<()> {
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let name = sts.metadata.name.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let selector_labels = sts
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    for claim in sts
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .into_iter()
        .flatten()
    {
        let cname = format!(
            "{}-{name}-{i}",
            claim.metadata.name.clone().unwrap_or_default()
        );
        if api.get_opt(&cname).await?.is_some() {
            continue;
        }
        let mut labels = claim.metadata.labels.clone().unwrap_or_default();
        labels.extend(selector_labels.clone());
        let pvc = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(cname),
                labels: Some(labels),
                annotations: claim.metadata.annotations.clone(),
                ..Default::default()
            },
            spec: claim.spec.clone(),
            status: None,
        };
        match api.create(&PostParams::default(), &pvc).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[allow(clippy::nonminimal_bool)] // the ordering rule reads better spelled out
async fn reconcile(sts: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action> {
    if sts.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let name = sts.metadata.name.clone().unwrap_or_default();
    let uid = sts.metadata.uid.clone().unwrap_or_default();
    let spec = sts.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let on_delete = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        == Some("OnDelete");
    let hash = template_hash(&spec.template);
    ensure_revision(&ctx.client, sts.as_ref(), &spec.template, &hash).await?;
    let reference = reference(sts.as_ref());
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut pods: BTreeMap<i32, Pod> = pods_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .filter_map(|p| Some((ordinal(&name, &p)?, p)))
        .collect();
    let rev = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(HASH_LABEL).cloned())
            .unwrap_or_default()
    };

    // Failed pods are replaced.
    for p in pods
        .values()
        .filter(|p| phase(p) == "Failed" && p.metadata.deletion_timestamp.is_none())
    {
        let _ = pods_api
            .delete(
                p.metadata.name.as_deref().unwrap_or_default(),
                &DeleteParams::default(),
            )
            .await;
    }
    pods.retain(|_, p| phase(p) != "Failed");

    // Create missing ordinals in order.
    for i in 0..replicas {
        match pods.get(&i) {
            // In order: the next ordinal waits until this one runs and is ready.
            Some(p) if !parallel && !(is_ready(p) && phase(p) == "Running") => break,
            Some(_) => continue,
            None => {
                ensure_claims(&ctx.client, &sts, i).await?;
                let pod = set_pod(&sts, i, &hash);
                let pname = pod.metadata.name.clone().unwrap_or_default();
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        let msg = format!("create Pod {pname} in StatefulSet {name} successful");
                        ctx.recorder
                            .record(&reference, EventType::Normal, "SuccessfulCreate", &msg)
                            .await;
                        pods.insert(i, p);
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
                if !parallel {
                    break;
                }
            }
        }
    }

    // Remove ordinals beyond replicas, highest first (one at a time unless Parallel).
    let all_ready = pods.values().filter(|p| is_active(p)).all(is_ready);
    let excess: Vec<i32> = pods
        .keys()
        .rev()
        .copied()
        .filter(|i| *i >= replicas)
        .collect();
    for i in excess {
        if !parallel && !all_ready {
            break;
        }
        let p = &pods[&i];
        if p.metadata.deletion_timestamp.is_none() {
            let pname = p.metadata.name.clone().unwrap_or_default();
            let _ = pods_api.delete(&pname, &DeleteParams::default()).await;
            ctx.recorder
                .record(
                    &reference,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("delete Pod {pname} in StatefulSet {name} successful"),
                )
                .await;
        }
        if !parallel {
            break;
        }
    }

    // Rolling update, highest ordinal first, down to the partition.
    if !on_delete && all_ready {
        for i in (partition..replicas).rev() {
            let Some(p) = pods.get(&i) else { break };
            if rev(p) != hash {
                if p.metadata.deletion_timestamp.is_none() {
                    let _ = pods_api
                        .delete(
                            p.metadata.name.as_deref().unwrap_or_default(),
                            &DeleteParams::default(),
                        )
                        .await;
                }
                break;
            }
        }
    }

    let live: Vec<&Pod> = pods
        .values()
        .filter(|p| is_active(p) && pods.contains_key(&ordinal(&name, p).unwrap_or(-1)))
        .collect();
    let ready = live.iter().filter(|p| is_ready(p)).count();
    let updated = live.iter().filter(|p| rev(p) == hash).count();
    let current_rev = sts
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .unwrap_or_else(|| format!("{name}-{hash}"));
    let status = json!({
        "replicas": live.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": if updated == live.len() { live.len() } else { live.len() - updated },
        "updatedReplicas": updated,
        "currentRevision": if updated == live.len() { format!("{name}-{hash}") } else { current_rev },
        "updateRevision": format!("{name}-{hash}"),
        "observedGeneration": sts.metadata.generation,
        "collisionCount": 0,
    });
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(30)))
}

fn error_policy(_s: Arc<StatefulSet>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "statefulset controller retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped.
pub async fn run(client: kube::Client) {
    let sets: Api<StatefulSet> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), "statefulset-controller"),
        client,
    });
    Controller::new(sets, watcher::Config::default())
        .owns(pods, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
