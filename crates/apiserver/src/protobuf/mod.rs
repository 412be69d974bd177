//! Request bodies in the Kubernetes protobuf encoding
//! (`application/vnd.kubernetes.protobuf`), as typed Go clients (kubectl create, drain,
//! auth whoami, create token) send them, decoded into the JSON the JSON path gets.
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown`: {1: typeMeta {1: apiVersion,
//! 2: kind}, 2: raw (the object's message), 3: contentEncoding, 4: contentType}. The
//! object's message is decoded by a generic wire-format walker over a field table
//! generated from k8s-pb's message definitions and the served kinds' OpenAPI schemas
//! (`table.rs`; see `examples/gen_proto_table.rs`), with the types whose JSON form is
//! not an object (IntOrString, Quantity, Time, RawExtension, ...) in `special.rs`.
//!
//! Zero values: Go's encoder writes non-pointer fields even when unset, so an empty
//! string is taken for an unset field (dropped) unless the schema says the field is
//! required; numbers and booleans present on the wire are kept (pointer fields such
//! as `replicas: 0` mean what they say); absent fields stay absent.

mod decode;
mod special;
#[allow(clippy::all)]
#[rustfmt::skip]
mod table;
mod table_types;
#[cfg(test)]
mod tests;
mod wire;

use serde_json::{Map, Value};

use crate::error::{ApiError, Result};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The magic in front of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nesting deeper than this is refused (stack safety on hostile input).
const MAX_DEPTH: usize = 100;

/// Decodes a protobuf request body into the object's JSON form, with `apiVersion` and
/// `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value> {
    decode_envelope(body, 0).map_err(|e| match e {
        Error::Malformed(m) => ApiError::bad_request(format!(
            "the protobuf body of the request could not be decoded: {m}"
        )),
        Error::Unsupported(m) => ApiError::unsupported_media_type(m),
    })
}

enum Error {
    Malformed(String),
    Unsupported(String),
}

impl From<String> for Error {
    fn from(m: String) -> Self {
        Error::Malformed(m)
    }
}

type DResult<T> = std::result::Result<T, Error>;

fn decode_envelope(body: &[u8], depth: usize) -> DResult<Value> {
    let Some(unknown) = body.strip_prefix(MAGIC) else {
        return Err(Error::Malformed(
            "the body does not start with the protobuf magic \"k8s\\x00\"".into(),
        ));
    };
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    for (tag, v) in wire::fields(unknown)? {
        match (tag, v) {
            (1, wire::Raw::Bytes(tm)) => {
                for (tag, v) in wire::fields(tm)? {
                    match (tag, v) {
                        (1, wire::Raw::Bytes(b)) => api_version = utf8(b)?,
                        (2, wire::Raw::Bytes(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, wire::Raw::Bytes(b)) => raw = b,
            (3, wire::Raw::Bytes(b)) => encoding = utf8(b)?,
            (4, wire::Raw::Bytes(_)) => {}
            (1..=4, _) => return Err(Error::Malformed("invalid runtime.Unknown envelope".into())),
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(Error::Unsupported(format!(
            "protobuf bodies with content encoding {encoding:?} are not supported"
        )));
    }
    if kind.is_empty() || api_version.is_empty() {
        return Err(Error::Malformed(
            "the envelope names no apiVersion and kind".into(),
        ));
    }
    let Some(message) = message_for(&api_version, &kind) else {
        return Err(Error::Unsupported(format!(
            "the protobuf encoding is not supported for {api_version}, Kind={kind}; send application/json"
        )));
    };
    let object = decode::message(message, raw, depth + 1)?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version));
    out.insert("kind".into(), Value::String(kind));
    if let Value::Object(fields) = object {
        for (k, v) in fields {
            out.entry(k).or_insert(v);
        }
    }
    Ok(Value::Object(out))
}

fn utf8(b: &[u8]) -> DResult<String> {
    String::from_utf8(b.to_vec()).map_err(|_| Error::Malformed("a string is not UTF-8".into()))
}

/// The k8s-pb module of an API group: `apps` -> `api.apps`, `rbac.authorization.k8s.io`
/// -> `api.rbac`, `apiextensions.k8s.io` -> `apiextensions_apiserver.pkg.apis.apiextensions`.
fn module_of(group: &str) -> String {
    match group {
        "" => "api.core".into(),
        "meta.k8s.io" => "apimachinery.pkg.apis.meta".into(),
        "apiextensions.k8s.io" => "apiextensions_apiserver.pkg.apis.apiextensions".into(),
        "apiregistration.k8s.io" => "kube_aggregator.pkg.apis.apiregistration".into(),
        "internal.apiserver.k8s.io" => "api.apiserverinternal".into(),
        g => format!("api.{}", g.split('.').next().unwrap_or_default()),
    }
}

/// The message of a kind: its group's, or meta/v1's for the options types every group
/// version registers (DeleteOptions, CreateOptions, ...).
fn message_for(api_version: &str, kind: &str) -> Option<usize> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    lookup(&format!("{}.{version}.{kind}", module_of(group)))
        .or_else(|| lookup(&format!("apimachinery.pkg.apis.meta.v1.{kind}")))
}

/// The table is sorted by lower-cased name: k8s-pb spells acronyms in CamelCase
/// (`ApiService`) where kinds keep them (`APIService`).
fn lookup(name: &str) -> Option<usize> {
    let name = name.to_ascii_lowercase();
    table::MESSAGES
        .binary_search_by(|m| {
            let a = m.name.bytes().map(|b| b.to_ascii_lowercase());
            a.cmp(name.bytes())
        })
        .ok()
}
