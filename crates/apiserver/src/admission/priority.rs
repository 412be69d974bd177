//! Priority admission: a pod's `priorityClassName` resolves to its `priority` (the
//! global default class, or 0, when it names none), and DefaultStorageClass: a claim
//! without a class gets the default StorageClass.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use store::Store;

use super::{Operation, Plugin, Request};
use crate::error::ApiError;

/// The classes every cluster has, with upstream's values.
pub const SYSTEM_CLASSES: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

const PRIORITY_CLASSES: &str = "/registry/priorityclasses/";
const STORAGE_CLASSES: &str = "/registry/storageclasses/";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

pub struct Priority {
    pub store: Arc<dyn Store>,
}

pub(super) async fn list(store: &dyn Store, prefix: &str) -> Result<Vec<Value>, ApiError> {
    let listed = store
        .list(prefix, store::ListOptions::default())
        .await
        .map_err(ApiError::internal)?;
    Ok(listed
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

#[async_trait]
impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(&self, req: &mut Request<'_>) -> Result<(), ApiError> {
        let is_pod = req.info.group.is_empty() && req.info.plural == "pods";
        if !(is_pod && req.operation == Operation::Create && req.subresource.is_none()) {
            return Ok(());
        }
        let class = req
            .object
            .pointer("/spec/priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (name, value, preemption) = if class.is_empty() {
            let classes = list(self.store.as_ref(), PRIORITY_CLASSES).await?;
            match classes
                .iter()
                .find(|c| c["globalDefault"].as_bool() == Some(true))
            {
                Some(c) => (
                    c["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    c["value"].as_i64().unwrap_or(0),
                    c["preemptionPolicy"].clone(),
                ),
                None => (String::new(), 0, Value::Null),
            }
        } else if let Some((_, v)) = SYSTEM_CLASSES.iter().find(|(n, _)| *n == class) {
            (class.clone(), *v, json!("PreemptLowerPriority"))
        } else {
            let kv = self
                .store
                .get(&format!("{PRIORITY_CLASSES}{class}"))
                .await
                .map_err(ApiError::internal)?;
            let Some(kv) = kv else {
                return Err(ApiError::forbidden(
                    req.info,
                    api::meta::name(req.object).unwrap_or_default(),
                    &format!("no PriorityClass with name {class} was found"),
                ));
            };
            let c: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
            (
                class.clone(),
                c["value"].as_i64().unwrap_or(0),
                c["preemptionPolicy"].clone(),
            )
        };
        if let Some(given) = req.object.pointer("/spec/priority").and_then(Value::as_i64)
            && given != value
        {
            return Err(ApiError::forbidden(
                req.info,
                api::meta::name(req.object).unwrap_or_default(),
                "the integer value of priority must not be provided in pod spec; priority admission controller computed the priority from the given PriorityClass name",
            ));
        }
        let spec = &mut req.object["spec"];
        if !name.is_empty() {
            spec["priorityClassName"] = json!(name);
        }
        spec["priority"] = json!(value);
        if spec.get("preemptionPolicy").is_none() {
            spec["preemptionPolicy"] = if preemption.is_null() {
                json!("PreemptLowerPriority")
            } else {
                preemption
            };
        }
        Ok(())
    }
}

pub struct DefaultStorageClass {
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    async fn admit(&self, req: &mut Request<'_>) -> Result<(), ApiError> {
        let is_pvc = req.info.group.is_empty() && req.info.plural == "persistentvolumeclaims";
        if !(is_pvc && req.operation == Operation::Create)
            || req.object.pointer("/spec/storageClassName").is_some()
        {
            return Ok(());
        }
        let classes = list(self.store.as_ref(), STORAGE_CLASSES).await?;
        let default = classes
            .iter()
            .filter(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
            .max_by_key(|c| {
                c["metadata"]["creationTimestamp"]
                    .as_str()
                    .map(str::to_string)
            });
        if let Some(c) = default {
            req.object["spec"]["storageClassName"] = c["metadata"]["name"].clone();
        }
        Ok(())
    }
}
