//! Objects in the store: JSON without `metadata.resourceVersion`, which is the key's
//! mod revision and is filled in on every read (as upstream's etcd3 store does).

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
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
    Bytes::from(serde_json::to_vec(&Stored(obj)).unwrap_or_default())
}

/// An object serialized as stored: without `metadata.resourceVersion`, skipped while
/// writing rather than removed from a copy (every update carries one).
struct Stored<'a>(&'a Value);

/// An object's metadata without its resourceVersion.
struct WithoutResourceVersion<'a>(&'a Map<String, Value>);

impl Serialize for Stored<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Value::Object(fields) = self.0 else {
            return self.0.serialize(serializer);
        };
        let mut out = serializer.serialize_map(Some(fields.len()))?;
        for (key, value) in fields {
            match value {
                Value::Object(metadata) if key == "metadata" => {
                    out.serialize_entry(key, &WithoutResourceVersion(metadata))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.end()
    }
}

impl Serialize for WithoutResourceVersion<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kept = self.0.iter().filter(|(k, _)| *k != "resourceVersion");
        serializer.collect_map(kept)
    }
}

/// Parses a resourceVersion string from a client.
pub fn parse_resource_version(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_form_leaves_out_only_the_resource_version() {
        let obj = json!({
            "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "labels": {"resourceVersion": "x"}},
            "data": {"resourceVersion": "kept"},
        });
        let stored: Value = serde_json::from_slice(&encode(&obj)).unwrap();
        let mut expected = obj.clone();
        api::meta::remove(&mut expected, "resourceVersion");
        assert_eq!(stored, expected);
        assert_eq!(
            String::from_utf8(encode(&obj).to_vec()).unwrap(),
            serde_json::to_string(&expected).unwrap(),
            "same field order as the object's"
        );
        let decoded = decode_at(&encode(&obj), 9).unwrap();
        assert_eq!(decoded["metadata"]["resourceVersion"], "9");
    }
}
