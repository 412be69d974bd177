//! The namespace controller (upstream's pkg/controller/namespace): when a namespace
//! is deleted, it deletes everything in it, reports progress as status conditions,
//! waits for the content to go (pods' graceful termination, other finalizers), then
//! removes the `kubernetes` finalizer through `namespaces/finalize` so the API server
//! can remove the namespace itself.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, Preconditions};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};

use crate::runtime::{Queue, Requeue, run_workers};

pub const COMPONENT: &str = "namespace-controller";
/// The finalizer the API server puts in every namespace's spec, owned by this controller.
const FINALIZER: &str = "kubernetes";

/// What is left in a namespace after a round of deletions.
#[derive(Default, Debug)]
struct Remaining {
    /// Instances per `resource.group`.
    resources: BTreeMap<String, usize>,
    /// Instances per finalizer still held by content.
    finalizers: BTreeMap<String, usize>,
    /// Types whose content could not be deleted or listed, with the error.
    failures: Vec<String>,
}

/// Runs the controller until the process ends.
pub async fn run(client: kube::Client, workers: usize) {
    let queue: Queue<String> =
        Queue::with_backoff(Duration::from_millis(100), Duration::from_secs(30));
    let feeder = {
        let queue = queue.clone();
        let api: Api<Namespace> = Api::all(client.clone());
        async move {
            let mut stream =
                std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            while let Some(event) = stream.next().await {
                let ns = match event {
                    Ok(watcher::Event::Apply(ns) | watcher::Event::InitApply(ns)) => ns,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "namespace watch failed; retrying");
                        continue;
                    }
                };
                if ns.metadata.deletion_timestamp.is_some()
                    && let Some(name) = ns.metadata.name
                {
                    queue.add(name);
                }
            }
        }
    };
    let work = run_workers(queue, workers, COMPONENT, move |name: String| {
        let client = client.clone();
        async move { sync(&client, &name).await }
    });
    tokio::join!(feeder, work);
}

/// One pass over a terminating namespace; asks to be requeued while content remains.
async fn sync(client: &kube::Client, name: &str) -> kube::Result<Requeue> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = namespaces.get_opt(name).await? else {
        return Ok(None);
    };
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    if !spec_finalizers(&ns).iter().any(|f| f == FINALIZER) {
        // Finalized already: only the final delete is left.
        return delete_namespace(&namespaces, &ns).await.map(|_| None);
    }
    let discovery = Discovery::new(client.clone()).run().await;
    let remaining = match &discovery {
        Ok(d) => delete_content(client, name, &deletable_types(d)).await,
        Err(e) => Remaining {
            failures: vec![format!("discovery failed: {e}")],
            ..Default::default()
        },
    };
    set_conditions(&namespaces, &ns, discovery.as_ref().err(), &remaining).await?;
    if !remaining.failures.is_empty() {
        return Ok(Some(Duration::from_secs(5)));
    }
    if !remaining.resources.is_empty() {
        // Upstream waits about as long as the content's grace periods; terminating pods
        // go when their kubelet confirms, so look again soon.
        return Ok(Some(Duration::from_secs(2)));
    }
    let mut finalized = ns.clone();
    let spec = finalized.spec.get_or_insert_with(Default::default);
    spec.finalizers = Some(
        spec_finalizers(&ns)
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect(),
    );
    let finalized: Namespace = namespaces
        .replace_subresource("finalize", name, &PostParams::default(), &finalized)
        .await?;
    if spec_finalizers(&finalized).is_empty() {
        delete_namespace(&namespaces, &finalized).await?;
    }
    Ok(None)
}

fn spec_finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

/// Deletes the namespace again now that it is finalized; gone already is fine.
async fn delete_namespace(api: &Api<Namespace>, ns: &Namespace) -> kube::Result<()> {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: ns.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api
        .delete(ns.metadata.name.as_deref().unwrap_or_default(), &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Namespaced types that can be listed and deleted, in each group's preferred version.
fn deletable_types(discovery: &Discovery) -> Vec<ApiResource> {
    let mut out = vec![];
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope == Scope::Namespaced
                && caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::DELETE)
            {
                out.push(ar);
            }
        }
    }
    out
}

/// Deletes all content of the namespace (a collection delete where the type allows,
/// else one by one), then counts what is still there.
async fn delete_content(client: &kube::Client, ns: &str, types: &[ApiResource]) -> Remaining {
    let mut remaining = Remaining::default();
    for ar in types {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
        let label = if ar.group.is_empty() {
            format!("{}.", ar.plural)
        } else {
            format!("{}.{}", ar.plural, ar.group)
        };
        let deleted = api
            .delete_collection(&DeleteParams::background(), &ListParams::default())
            .await;
        if let Err(e) = deleted {
            let unsupported = matches!(&e, kube::Error::Api(s) if s.code == 405 || s.code == 404);
            if !unsupported {
                remaining.failures.push(format!("{label}: {e}"));
                continue;
            }
        }
        let objects = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) => {
                remaining.failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        if objects.is_empty() {
            continue;
        }
        remaining.resources.insert(label.clone(), objects.len());
        for obj in &objects {
            for f in obj.metadata.finalizers.iter().flatten() {
                *remaining.finalizers.entry(f.clone()).or_default() += 1;
            }
            if obj.metadata.deletion_timestamp.is_none()
                && let Some(name) = &obj.metadata.name
            {
                let _ = api.delete(name, &DeleteParams::background()).await;
            }
        }
    }
    remaining
}

/// The conditions upstream reports on a terminating namespace.
fn conditions(
    discovery_error: Option<&kube::Error>,
    r: &Remaining,
) -> Vec<(String, bool, String, String)> {
    let counted = |m: &BTreeMap<String, usize>, word: &str| {
        m.iter()
            .map(|(k, n)| format!("{k} {word} {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let c =
        |t: &str, on: bool, reason: &str, msg: String| (t.to_string(), on, reason.to_string(), msg);
    vec![
        match discovery_error {
            Some(e) => c(
                "NamespaceDeletionDiscoveryFailure",
                true,
                "DiscoveryFailed",
                format!("Discovery failed for some groups: {e}"),
            ),
            None => c(
                "NamespaceDeletionDiscoveryFailure",
                false,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            ),
        },
        c(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        if r.failures.is_empty() {
            c(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            c(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    r.failures.len(),
                    r.failures.join(", ")
                ),
            )
        },
        if r.resources.is_empty() {
            c(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            c(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!(
                    "Some resources are remaining: {}",
                    counted(&r.resources, "has")
                ),
            )
        },
        if r.finalizers.is_empty() {
            c(
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished".into(),
            )
        } else {
            c(
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    counted(&r.finalizers, "in")
                ),
            )
        },
    ]
}

/// Writes the conditions (and phase Terminating) when they changed.
async fn set_conditions(
    api: &Api<Namespace>,
    ns: &Namespace,
    discovery_error: Option<&kube::Error>,
    remaining: &Remaining,
) -> kube::Result<()> {
    let old = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    let mut changed = ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating");
    let new: Vec<NamespaceCondition> = conditions(discovery_error, remaining)
        .into_iter()
        .map(|(type_, on, reason, message)| {
            let status = if on { "True" } else { "False" }.to_string();
            let prev = old.iter().find(|c| c.type_ == type_);
            let same = prev.is_some_and(|p| {
                p.status == status
                    && p.reason.as_deref() == Some(&reason)
                    && p.message.as_deref() == Some(&message)
            });
            changed |= !same;
            let since = prev
                .filter(|p| p.status == status)
                .and_then(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            NamespaceCondition {
                type_,
                status,
                reason: Some(reason),
                message: Some(message),
                last_transition_time: Some(since),
            }
        })
        .collect();
    if !changed {
        return Ok(());
    }
    let mut updated = ns.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    status.phase = Some("Terminating".into());
    status.conditions = Some(new);
    match api
        .replace_status(
            ns.metadata.name.as_deref().unwrap_or_default(),
            &PostParams::default(),
            &updated,
        )
        .await
    {
        Ok(_) => Ok(()),
        // A newer version will be looked at again; the conditions are informative.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_worded_as_upstream() {
        let mut r = Remaining::default();
        r.resources.insert("configmaps.".into(), 1);
        r.finalizers.insert("example/test".into(), 1);
        let c = conditions(None, &r);
        assert_eq!(
            c[3].3,
            "Some resources are remaining: configmaps. has 1 resource instances"
        );
        assert_eq!(
            c[4].3,
            "Some content in the namespace has finalizers remaining: example/test in 1 resource instances"
        );
        assert!(c[3].1 && c[4].1 && !c[0].1);
    }
}
