//! Objects in the store: JSON without `metadata.resourceVersion`, which is the key's
//! mod revision and is filled in on every read (as upstream's etcd3 store does).

use bytes::Bytes;
use serde_json::Value;
use store::{KeyValue, Revision};

use crate::error::ApiError;

/// The object stored at `kv`, with its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    decode_at(&kv.value, kv.mod_revision)
}

/// Decodes a stored value and stamps `revision` as its resourceVersion.
pub fn decode_at(value: &[u8], revision: Revision) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object is not valid JSON: {e}")))?;
    set_resource_version(&mut obj, revision);
    Ok(obj)
}

pub fn set_resource_version(obj: &mut Value, revision: Revision) {
    api::meta::set_str(obj, "resourceVersion", &revision.to_string());
}

/// The bytes to store for `obj`: everything but its resourceVersion.
pub fn encode(obj: &Value) -> Bytes {
    let rv = obj.pointer("/metadata/resourceVersion");
    if rv.is_none() {
        return Bytes::from(serde_json::to_vec(obj).unwrap_or_default());
    }
    let mut copy = obj.clone();
    api::meta::remove(&mut copy, "resourceVersion");
    Bytes::from(serde_json::to_vec(&copy).unwrap_or_default())
}

/// Parses a resourceVersion string from a client.
pub fn parse_resource_version(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}
