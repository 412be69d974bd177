//! Content negotiation: what the client sent (JSON, YAML, patch types) and what it
//! accepts back (JSON, YAML, Table, PartialObjectMetadata, aggregated discovery).

use http::HeaderMap;
use serde_json::Value;

use crate::error::{ApiError, Result};

/// The representation a client asked for in `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// meta.k8s.io Table, at v1 or v1beta1.
    Table {
        v1beta1: bool,
    },
    /// PartialObjectMetadata (or its list), at meta.k8s.io v1 or v1beta1.
    Metadata {
        v1beta1: bool,
    },
    /// apidiscovery.k8s.io APIGroupDiscoveryList at v2 or v2beta1.
    Discovery {
        v2beta1: bool,
    },
}

/// One entry of an Accept header.
struct MediaRange<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl MediaRange<'_> {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }
}

fn ranges(accept: &str) -> impl Iterator<Item = MediaRange<'_>> {
    accept.split(',').map(|r| {
        let mut parts = r.split(';').map(str::trim);
        let essence = parts.next().unwrap_or_default();
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        MediaRange { essence, params }
    })
}

/// The first representation in `Accept` that this server can produce.
pub fn output(headers: &HeaderMap) -> Result<Output> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for r in ranges(accept) {
        let json = matches!(
            r.essence,
            "application/json" | "application/*" | "*/*" | "*"
        );
        match (r.param("as"), r.param("g"), r.param("v")) {
            (Some("Table"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) if json => {
                return Ok(Output::Table {
                    v1beta1: v == "v1beta1",
                });
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some(v @ ("v1" | "v1beta1")),
            ) if json => {
                return Ok(Output::Metadata {
                    v1beta1: v == "v1beta1",
                });
            }
            (
                Some("APIGroupDiscoveryList"),
                Some("apidiscovery.k8s.io"),
                Some(v @ ("v2" | "v2beta1")),
            ) if json => {
                return Ok(Output::Discovery {
                    v2beta1: v == "v2beta1",
                });
            }
            (Some(_), _, _) => continue,
            (None, _, _) if json => return Ok(Output::Json),
            (None, _, _) if matches!(r.essence, "application/yaml" | "text/yaml") => {
                return Ok(Output::Yaml);
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(
        "only the following media types are accepted: application/json, application/yaml",
    ))
}

/// Decodes a request body as JSON, YAML or Kubernetes protobuf, as `Content-Type` says.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    let ct = content_type(headers);
    match ct.as_str() {
        "" | "application/json" | "*/*" => decode_json(body),
        "application/yaml" | "text/yaml" | "application/apply-patch+yaml" => decode_yaml(body),
        crate::protobuf::MEDIA_TYPE => crate::protobuf::decode(body),
        other => Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

/// The media type of `Content-Type` without parameters, lower case.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

pub fn decode_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn decode_yaml(body: &[u8]) -> Result<Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
    // JSON is YAML too; the JSON parser is faster and exact for it.
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Renders a value as the client asked: JSON, or YAML.
pub fn encode(value: &Value, output: Output) -> (Vec<u8>, &'static str) {
    match output {
        Output::Yaml => (
            serde_saphyr::to_string(value)
                .unwrap_or_default()
                .into_bytes(),
            "application/yaml",
        ),
        _ => (
            serde_json::to_vec(value).unwrap_or_default(),
            "application/json",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Result<Output> {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, v.parse().unwrap());
        output(&h)
    }

    #[test]
    fn kubectl_accept_headers() {
        assert_eq!(
            accept("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json").unwrap(),
            Output::Table { v1beta1: false }
        );
        assert_eq!(
            accept("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json").unwrap(),
            Output::Discovery { v2beta1: false }
        );
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, application/json").unwrap(),
            Output::Json
        );
        assert_eq!(accept("application/yaml").unwrap(), Output::Yaml);
        assert_eq!(
            accept("application/json;as=Foo;g=x;v=y").unwrap_err().code,
            406
        );
    }
}
