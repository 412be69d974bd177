//! Adoption and release of dependents (upstream's ControllerRefManager): a controller
//! claims the orphans its selector matches by adding its controller reference, and
//! lets go of the dependents it owns that its selector no longer matches.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::core::Selector;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::podutil::{controller_of, matches};
use crate::{Error, Result};

/// Claims dependents for one owner.
pub struct RefManager<'a, O> {
    pub owner: &'a O,
    /// The owner as stored now; adoption is refused when it is gone or being deleted
    /// (the cache may be behind), checked once per claim.
    pub owner_api: Api<O>,
    pub selector: &'a Selector,
    pub controller_ref: OwnerReference,
    can_adopt: OnceCell<Result<(), String>>,
}

impl<'a, O> RefManager<'a, O>
where
    O: Resource + Clone + DeserializeOwned + Debug,
{
    pub fn new(
        owner: &'a O,
        owner_api: Api<O>,
        selector: &'a Selector,
        controller_ref: OwnerReference,
    ) -> Self {
        Self {
            owner,
            owner_api,
            selector,
            controller_ref,
            can_adopt: OnceCell::new(),
        }
    }

    fn owner_deleting(&self) -> bool {
        self.owner.meta().deletion_timestamp.is_some()
    }

    async fn check_can_adopt(&self) -> Result<(), String> {
        self.can_adopt
            .get_or_init(|| async {
                let name = self.owner.name_any();
                let fresh = self.owner_api.get(&name).await.map_err(|e| e.to_string())?;
                let want = self.controller_ref.uid.as_str();
                let got = fresh.meta().uid.clone().unwrap_or_default();
                if got != want {
                    return Err(format!(
                        "original {name} is gone: got uid {got}, wanted {want}"
                    ));
                }
                if fresh.meta().deletion_timestamp.is_some() {
                    return Err(format!("{name} has just been deleted"));
                }
                Ok(())
            })
            .await
            .clone()
    }

    /// The dependents this owner controls after adopting and releasing; the first
    /// error, if any, after trying them all.
    pub async fn claim<D>(
        &self,
        api_for: impl Fn(&D) -> Api<D>,
        objects: Vec<Arc<D>>,
    ) -> Result<Vec<Arc<D>>>
    where
        D: Resource + Clone + DeserializeOwned + Debug,
    {
        let mut claimed = Vec::new();
        let mut first_error = None;
        let uid = self.controller_ref.uid.as_str();
        for obj in objects {
            let meta = obj.meta();
            let matched = matches(self.selector, meta);
            match controller_of(meta) {
                Some(r) if r.uid == uid => {
                    if matched {
                        claimed.push(obj);
                    } else if !self.owner_deleting()
                        && let Err(e) = release(&api_for(&obj), &obj, uid).await
                    {
                        first_error.get_or_insert(e);
                    }
                }
                Some(_) => {}
                None => {
                    if !matched || self.owner_deleting() || meta.deletion_timestamp.is_some() {
                        continue;
                    }
                    if let Err(e) = self.check_can_adopt().await {
                        first_error.get_or_insert(Error::Other(format!(
                            "can't adopt {}: {e}",
                            obj.name_any()
                        )));
                        continue;
                    }
                    match adopt(&api_for(&obj), &obj, &self.controller_ref).await {
                        Ok(Some(adopted)) => claimed.push(Arc::new(adopted)),
                        Ok(None) => {}
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Adds our controller reference; `None` when the dependent is gone.
async fn adopt<D>(api: &Api<D>, obj: &D, ours: &OwnerReference) -> Result<Option<D>>
where
    D: Resource + Clone + DeserializeOwned + Debug,
{
    let mut refs = obj.meta().owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != ours.uid);
    refs.push(ours.clone());
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.meta().resource_version,
    }});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes the reference to `owner_uid`.
async fn release<D>(api: &Api<D>, obj: &D, owner_uid: &str) -> Result<()>
where
    D: Resource + Clone + DeserializeOwned + Debug,
{
    let refs: Vec<OwnerReference> = obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let refs = if refs.is_empty() {
        json!(null)
    } else {
        json!(refs)
    };
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.meta().resource_version,
    }});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
