//! downwardAPI volumes (and projected sources): pod fields and container resources as
//! files, rendered as upstream does (maps as sorted `key="value"` lines, resources
//! rounded up to the divisor, unset limits from the node's allocatable).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, Pod, ResourceFieldSelector};

use super::atomic::{File, Payload};

/// The node's allocatable resources, what unset limits default to.
#[derive(Clone, Copy, Debug)]
pub struct Allocatable {
    pub cpu_milli: i128,
    pub memory: i128,
    pub ephemeral_storage: i128,
}

pub fn make(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    default_mode: i32,
    node: Allocatable,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            field(pod, &f.field_path)?
        } else if let Some(r) = &item.resource_field_ref {
            resource(pod, r, node)?
        } else {
            return Err(format!(
                "downwardAPI item {} has no fieldRef or resourceFieldRef",
                item.path
            ));
        };
        let file = File {
            data: value.into_bytes(),
            mode: item.mode.unwrap_or(default_mode) as u32,
            owner: None,
        };
        out.insert(item.path.clone(), file);
    }
    Ok(out)
}

fn field(pod: &Pod, path: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let one = |map: &Option<BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(m.labels.as_ref()),
        "metadata.annotations" => format_map(m.annotations.as_ref()),
        _ => one(&m.labels, "metadata.labels['")
            .or_else(|| one(&m.annotations, "metadata.annotations['"))
            .ok_or_else(|| format!("unsupported fieldPath: {path}"))?,
    })
}

/// Upstream's fieldpath.FormatMap: `key="value"` per line, keys sorted, Go-quoted.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's strconv.Quote for the characters that occur in labels and annotations.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn resource(pod: &Pod, r: &ResourceFieldSelector, node: Allocatable) -> Result<String, String> {
    let name = r.container_name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref().ok_or("pod has no spec")?;
    let container = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .ok_or_else(|| format!("container {name} not found"))?;
    let res = container.resources.as_ref();
    let get = |which: &str, key: &str| {
        let map = match which {
            "limits" => res.and_then(|r| r.limits.as_ref()),
            _ => res.and_then(|r| r.requests.as_ref()),
        };
        map.and_then(|m| m.get(key))
            .and_then(|q| scheduler::resources::parse_milli(&q.0))
    };
    let (which, key) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {}", r.resource))?;
    let default = match key {
        "cpu" => node.cpu_milli,
        "memory" => node.memory * 1000,
        "ephemeral-storage" => node.ephemeral_storage * 1000,
        _ => return Err(format!("unsupported container resource : {}", r.resource)),
    };
    let milli = match which {
        "limits" => get("limits", key).unwrap_or(default),
        "requests" => get("requests", key).or(get("limits", key)).unwrap_or(0),
        _ => return Err(format!("unsupported container resource : {}", r.resource)),
    };
    let divisor = r
        .divisor
        .as_ref()
        .and_then(|q| scheduler::resources::parse_milli(&q.0))
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    let value = if key == "cpu" {
        ceil_div(milli, divisor)
    } else {
        // Memory and storage in whole units: Value() rounds up, then the divisor's.
        ceil_div(ceil_div(milli, 1000), ceil_div(divisor, 1000).max(1))
    };
    Ok(value.to_string())
}

fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1).div_euclid(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectFieldSelector;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                "labels": {"b": "2", "a": "x\"y"}, "annotations": {"note": "line1\nline2"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}}]}
        }))
        .unwrap()
    }

    fn by_field(path: &str, field: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                api_version: None,
            }),
            ..Default::default()
        }
    }

    fn by_resource(path: &str, resource: &str, divisor: Option<&str>) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("c".into()),
                resource: resource.into(),
                divisor: divisor
                    .map(|d| k8s_openapi::apimachinery::pkg::api::resource::Quantity(d.into())),
            }),
            ..Default::default()
        }
    }

    const NODE: Allocatable = Allocatable {
        cpu_milli: 2000,
        memory: 1 << 30,
        ephemeral_storage: 10 << 30,
    };

    fn render(items: &[DownwardAPIVolumeFile]) -> BTreeMap<String, String> {
        make(items, &pod(), 0o644, NODE)
            .unwrap()
            .into_iter()
            .map(|(k, f)| (k, String::from_utf8(f.data).unwrap()))
            .collect()
    }

    #[test]
    fn renders_fields_like_upstream() {
        let got = render(&[
            by_field("name", "metadata.name"),
            by_field("namespace", "metadata.namespace"),
            by_field("uid", "metadata.uid"),
            by_field("labels", "metadata.labels"),
            by_field("annotations", "metadata.annotations"),
            by_field("b", "metadata.labels['b']"),
        ]);
        assert_eq!(got["name"], "p");
        assert_eq!(got["namespace"], "ns");
        assert_eq!(got["uid"], "u-1");
        assert_eq!(got["labels"], "a=\"x\\\"y\"\nb=\"2\"");
        assert_eq!(got["annotations"], "note=\"line1\\nline2\"");
        assert_eq!(got["b"], "2");
        assert!(make(&[by_field("x", "spec.bogus")], &pod(), 0o644, NODE).is_err());
    }

    #[test]
    fn renders_resources_like_upstream() {
        let got = render(&[
            by_resource("cpu_limit", "limits.cpu", None),
            by_resource("cpu_limit_m", "limits.cpu", Some("1m")),
            by_resource("cpu_request_m", "requests.cpu", Some("1m")),
            by_resource("mem_limit", "limits.memory", None),
            by_resource("mem_limit_mi", "limits.memory", Some("1Mi")),
            by_resource("mem_request", "requests.memory", Some("1Mi")),
            by_resource("storage", "limits.ephemeral-storage", Some("1Gi")),
        ]);
        // 250m rounds up to one whole CPU.
        assert_eq!(got["cpu_limit"], "1");
        assert_eq!(got["cpu_limit_m"], "250");
        assert_eq!(got["cpu_request_m"], "100");
        assert_eq!(got["mem_limit"], (64u64 << 20).to_string());
        assert_eq!(got["mem_limit_mi"], "64");
        // Requests default to limits.
        assert_eq!(got["mem_request"], "64");
        // An unset limit is the node's allocatable.
        assert_eq!(got["storage"], "10");
    }
}
