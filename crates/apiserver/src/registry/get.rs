//! Get one object.

use serde_json::Value;

use api::ResourceInfo;

use super::{Registry, codec};
use crate::error::{ApiError, Result};

impl Registry {
    pub async fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Value> {
        let kv = self
            .store
            .get(&info.key(ns, name))
            .await
            .map_err(|e| ApiError::from_store(e, info, name))?;
        match kv {
            Some(kv) => codec::decode(&kv),
            None => Err(ApiError::not_found(info, name)),
        }
    }

    /// Like [`Registry::get`], but `None` for a missing object.
    pub async fn try_get(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>> {
        match self.get(info, ns, name).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}
