//! The collector's two kinds of work (upstream's attemptToDeleteItem and
//! attemptToOrphanWorker), always against the live object: the graph says where to
//! look, the API server says what is true.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::json;

use super::GarbageCollector;
use super::graph::{FOREGROUND, Identity, ORPHAN};
use super::monitors::Meta;
use crate::Result;
use crate::runtime::Requeue;

/// What an owner reference points at, for the dependent holding it.
#[derive(Debug, PartialEq, Eq)]
enum OwnerState {
    /// There, and not waiting for its dependents.
    Solid,
    /// Gone, or replaced by another object of the same name.
    Dangling,
    /// Being deleted in the foreground: its dependents go first.
    Waiting,
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn has(meta: &Meta, finalizer: &str) -> bool {
    meta.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == finalizer)
}

impl GarbageCollector {
    fn api(&self, id: &Identity) -> Api<DynamicObject> {
        match &id.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &*id.resource),
            None => Api::all_with(self.client.clone(), &*id.resource),
        }
    }

    /// The object as stored now, if it is still the one the graph knows.
    async fn live(&self, id: &Identity) -> Result<Option<Meta>> {
        match self.api(id).get_metadata_opt(&id.name).await? {
            Some(m) if m.metadata.uid.as_deref() == Some(id.uid.as_str()) => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    fn identity(&self, uid: &str) -> Option<Identity> {
        self.graph.lock().get(uid).and_then(|n| n.identity.clone())
    }

    pub async fn attempt_to_delete(&self, uid: &str) -> Result<Requeue> {
        let Some(id) = self.identity(uid) else {
            return Ok(None);
        };
        let Some(latest) = self.live(&id).await? else {
            return Ok(None);
        };
        let deleting = latest.metadata.deletion_timestamp.is_some();
        if deleting && has(&latest, FOREGROUND) {
            return self.process_deleting_dependents(&id).await;
        }
        if deleting {
            return Ok(None);
        }
        let refs = latest.metadata.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(None);
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for r in refs {
            match self.owner_state(&id, &r).await? {
                OwnerState::Solid => solid.push(r),
                OwnerState::Dangling => dangling.push(r),
                OwnerState::Waiting => waiting.push(r),
            }
        }
        let rv = latest.metadata.resource_version.clone();
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(None);
            }
            // Owned by someone still: only the references to absent or departing
            // owners go.
            let patch = json!({"metadata": {"ownerReferences": solid, "resourceVersion": rv}});
            return self.patch(&id, &patch).await;
        }
        let has_dependents = self
            .graph
            .lock()
            .get(uid)
            .is_some_and(|n| !n.dependents.is_empty());
        let policy = if !waiting.is_empty() && has_dependents {
            // An owner waits for us and we have dependents of our own: they go first.
            PropagationPolicy::Foreground
        } else if has(&latest, ORPHAN) {
            PropagationPolicy::Orphan
        } else if has(&latest, FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::debug!(object = %id.name, uid, ?policy, "deleting object whose owners are gone");
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(id.uid.clone()),
                resource_version: rv,
            }),
            ..Default::default()
        };
        match self.api(&id).delete(&id.name, &dp).await {
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn owner_state(&self, dependent: &Identity, r: &OwnerReference) -> Result<OwnerState> {
        if let Some(owner) = self.graph.lock().get(&r.uid) {
            return Ok(if owner.deleting_dependents {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        let Some(resource) = self.resources.read().resolve(&r.api_version, &r.kind) else {
            // Not (yet) served, e.g. a custom resource discovery has not picked up:
            // look again later, as upstream does on a REST mapping failure.
            return Err(crate::Error::Other(format!(
                "unable to get REST mapping for {}/{}",
                r.api_version, r.kind
            )));
        };
        let api: Api<DynamicObject> = match (&dependent.namespace, resource.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &*resource.api),
            // A cluster-scoped object cannot be owned by a namespaced one.
            (None, true) => return Ok(OwnerState::Dangling),
            (_, false) => Api::all_with(self.client.clone(), &*resource.api),
        };
        Ok(match api.get_metadata_opt(&r.name).await? {
            None => OwnerState::Dangling,
            Some(o) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => OwnerState::Dangling,
            Some(o) if o.metadata.deletion_timestamp.is_some() && has(&o, FOREGROUND) => {
                OwnerState::Waiting
            }
            Some(_) => OwnerState::Solid,
        })
    }

    /// An owner being deleted in the foreground: once no dependent blocks it, its
    /// finalizer goes; until then its blocking dependents are deleted.
    async fn process_deleting_dependents(&self, id: &Identity) -> Result<Requeue> {
        let blocking = self.graph.lock().blocking_dependents(&id.uid);
        if blocking.is_empty() {
            self.remove_finalizer(id, FOREGROUND).await?;
            return Ok(None);
        }
        for dep in blocking {
            let deleting = self
                .graph
                .lock()
                .get(&dep)
                .is_some_and(|n| n.deleting_dependents);
            if !deleting {
                self.delete_queue.add(dep);
            }
        }
        Ok(None)
    }

    pub async fn attempt_to_orphan(&self, uid: &str) -> Result<Requeue> {
        let Some(owner) = self.identity(uid) else {
            return Ok(None);
        };
        let dependents: Vec<Identity> = {
            let graph = self.graph.lock();
            graph
                .get(uid)
                .map(|n| {
                    n.dependents
                        .iter()
                        .filter_map(|d| graph.get(d)?.identity.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        for dep in dependents {
            let Some(latest) = self.live(&dep).await? else {
                continue;
            };
            let refs = latest.metadata.owner_references.clone().unwrap_or_default();
            let kept: Vec<&OwnerReference> = refs.iter().filter(|r| r.uid != owner.uid).collect();
            if kept.len() == refs.len() {
                continue;
            }
            let kept = if kept.is_empty() {
                json!(null)
            } else {
                json!(kept)
            };
            let patch = json!({"metadata": {"ownerReferences": kept, "resourceVersion": latest.metadata.resource_version}});
            self.patch(&dep, &patch).await?;
        }
        self.remove_finalizer(&owner, ORPHAN).await?;
        Ok(None)
    }

    async fn patch(&self, id: &Identity, patch: &serde_json::Value) -> Result<Requeue> {
        match self
            .api(id)
            .patch(&id.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_finalizer(&self, id: &Identity, finalizer: &str) -> Result<()> {
        let Some(latest) = self.live(id).await? else {
            return Ok(());
        };
        let all = latest.metadata.finalizers.clone().unwrap_or_default();
        let kept: Vec<&String> = all.iter().filter(|f| *f != finalizer).collect();
        if kept.len() == all.len() {
            return Ok(());
        }
        let kept = if kept.is_empty() {
            json!(null)
        } else {
            json!(kept)
        };
        let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": latest.metadata.resource_version}});
        self.patch(id, &patch).await.map(|_| ())
    }
}
