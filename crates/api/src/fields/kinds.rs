//! The built-in kinds with selectable fields beyond the metadata ones. Each entry
//! pairs upstream's field label conversion (`pkg/apis/<group>/<version>/conversion.go`)
//! with the registry's `ToSelectableFields` (`pkg/registry/<group>/<kind>/strategy.go`).

use std::sync::Arc;

use serde_json::Value;

use super::{Fields, default_conversion, metadata_fields};
use crate::selectors::go_quote;

struct Kind {
    /// Labels the conversion accepts unchanged.
    accepted: &'static [&'static str],
    /// Labels it accepts under another name: (label, canonical name).
    aliases: &'static [(&'static str, &'static str)],
    /// The error for any other label.
    reject: fn(&str) -> Result<String, String>,
    values: fn(&Value) -> Vec<(String, String)>,
}

impl Fields for Kind {
    fn fields(&self, obj: &Value) -> Vec<(String, String)> {
        (self.values)(obj)
    }

    fn convert_label(&self, label: &str) -> Result<String, String> {
        if self.accepted.contains(&label) {
            return Ok(label.to_string());
        }
        match self.aliases.iter().find(|(from, _)| *from == label) {
            Some((_, to)) => Ok(to.to_string()),
            None => (self.reject)(label),
        }
    }
}

/// The message most of upstream's conversion functions use.
fn not_supported(label: &str) -> Result<String, String> {
    Err(format!("field label not supported: {label}"))
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn int_of(v: &Value) -> String {
    v.as_i64().unwrap_or(0).to_string()
}

fn bool_of(v: &Value) -> String {
    v.as_bool().unwrap_or(false).to_string()
}

fn with(
    mut base: Vec<(String, String)>,
    more: impl IntoIterator<Item = (&'static str, String)>,
) -> Vec<(String, String)> {
    base.extend(more.into_iter().map(|(k, v)| (k.to_string(), v)));
    base
}

fn pod_values(obj: &Value) -> Vec<(String, String)> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    // The first of status.podIPs, which the v1 conversion fills from status.podIP.
    let pod_ip = status["podIPs"][0]["ip"]
        .as_str()
        .or_else(|| status["podIP"].as_str())
        .unwrap_or_default()
        .to_string();
    with(
        metadata_fields(obj, true),
        [
            ("spec.nodeName", str_of(&spec["nodeName"])),
            ("spec.restartPolicy", str_of(&spec["restartPolicy"])),
            ("spec.schedulerName", str_of(&spec["schedulerName"])),
            (
                "spec.serviceAccountName",
                str_of(&spec["serviceAccountName"]),
            ),
            ("spec.hostNetwork", bool_of(&spec["hostNetwork"])),
            ("status.phase", str_of(&status["phase"])),
            ("status.podIP", pod_ip),
            (
                "status.nominatedNodeName",
                str_of(&status["nominatedNodeName"]),
            ),
        ],
    )
}

fn node_values(obj: &Value) -> Vec<(String, String)> {
    with(
        metadata_fields(obj, false),
        [("spec.unschedulable", bool_of(&obj["spec"]["unschedulable"]))],
    )
}

fn namespace_values(obj: &Value) -> Vec<(String, String)> {
    with(
        metadata_fields(obj, false),
        [("status.phase", str_of(&obj["status"]["phase"]))],
    )
}

fn secret_values(obj: &Value) -> Vec<(String, String)> {
    with(metadata_fields(obj, true), [("type", str_of(&obj["type"]))])
}

fn service_values(obj: &Value) -> Vec<(String, String)> {
    let spec = &obj["spec"];
    with(
        metadata_fields(obj, true),
        [
            ("spec.clusterIP", str_of(&spec["clusterIP"])),
            ("spec.type", str_of(&spec["type"])),
        ],
    )
}

fn replicas_values(obj: &Value) -> Vec<(String, String)> {
    with(
        metadata_fields(obj, true),
        [("status.replicas", int_of(&obj["status"]["replicas"]))],
    )
}

fn job_values(obj: &Value) -> Vec<(String, String)> {
    with(
        metadata_fields(obj, true),
        [("status.successful", int_of(&obj["status"]["succeeded"]))],
    )
}

/// Core event fields; the object may be stored in the core shape or, for
/// events.k8s.io, in its own (`regarding`, `reportingController`, `deprecatedSource`).
fn event_values(obj: &Value) -> Vec<(String, String)> {
    let involved = if obj["involvedObject"].is_object() {
        &obj["involvedObject"]
    } else {
        &obj["regarding"]
    };
    let reporting = obj["reportingComponent"]
        .as_str()
        .or_else(|| obj["reportingController"].as_str())
        .unwrap_or_default()
        .to_string();
    let component = obj["source"]["component"]
        .as_str()
        .or_else(|| obj["deprecatedSource"]["component"].as_str())
        .unwrap_or_default();
    let source = if component.is_empty() {
        reporting.clone()
    } else {
        component.to_string()
    };
    let o = |f: &str| str_of(&involved[f]);
    with(
        metadata_fields(obj, true),
        [
            ("involvedObject.kind", o("kind")),
            ("involvedObject.namespace", o("namespace")),
            ("involvedObject.name", o("name")),
            ("involvedObject.uid", o("uid")),
            ("involvedObject.apiVersion", o("apiVersion")),
            ("involvedObject.resourceVersion", o("resourceVersion")),
            ("involvedObject.fieldPath", o("fieldPath")),
            ("reason", str_of(&obj["reason"])),
            ("reportingComponent", reporting),
            ("source", source),
            ("type", str_of(&obj["type"])),
        ],
    )
}

const META: [&str; 2] = ["metadata.name", "metadata.namespace"];

pub(super) fn for_resource(group: &str, plural: &str) -> Option<Arc<dyn Fields>> {
    let kind = match (group, plural) {
        ("", "pods") => Kind {
            accepted: &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            // Old v1 clients say spec.host.
            aliases: &[("spec.host", "spec.nodeName")],
            reject: not_supported,
            values: pod_values,
        },
        ("", "nodes") => Kind {
            accepted: &["metadata.name", "spec.unschedulable"],
            aliases: &[],
            reject: not_supported,
            values: node_values,
        },
        ("", "namespaces") => Kind {
            accepted: &["metadata.name", "status.phase"],
            aliases: &[],
            reject: not_supported,
            values: namespace_values,
        },
        ("", "secrets") => Kind {
            accepted: &["metadata.name", "metadata.namespace", "type"],
            aliases: &[],
            reject: not_supported,
            values: secret_values,
        },
        ("", "services") => Kind {
            accepted: &[
                "metadata.name",
                "metadata.namespace",
                "spec.clusterIP",
                "spec.type",
            ],
            aliases: &[],
            reject: not_supported,
            values: service_values,
        },
        ("", "replicationcontrollers") => Kind {
            accepted: &["metadata.name", "metadata.namespace", "status.replicas"],
            aliases: &[],
            reject: not_supported,
            values: replicas_values,
        },
        // apps/v1 registers no conversion: status.replicas is set but not selectable.
        ("apps", "replicasets") => Kind {
            accepted: &META,
            aliases: &[],
            reject: default_conversion,
            values: replicas_values,
        },
        ("batch", "jobs") => Kind {
            accepted: &["metadata.name", "metadata.namespace", "status.successful"],
            aliases: &[],
            reject: |label| {
                Err(format!(
                    "field label {} not supported for Job",
                    go_quote(label)
                ))
            },
            values: job_values,
        },
        ("", "events") => Kind {
            accepted: &[
                "metadata.name",
                "metadata.namespace",
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            aliases: &[],
            reject: not_supported,
            values: event_values,
        },
        // The same objects; events.k8s.io names the fields after its own schema.
        ("events.k8s.io", "events") => Kind {
            accepted: &["metadata.name", "metadata.namespace", "reason", "type"],
            aliases: &[
                ("regarding.kind", "involvedObject.kind"),
                ("regarding.namespace", "involvedObject.namespace"),
                ("regarding.name", "involvedObject.name"),
                ("regarding.uid", "involvedObject.uid"),
                ("regarding.apiVersion", "involvedObject.apiVersion"),
                (
                    "regarding.resourceVersion",
                    "involvedObject.resourceVersion",
                ),
                ("regarding.fieldPath", "involvedObject.fieldPath"),
                ("reportingController", "reportingComponent"),
            ],
            reject: not_supported,
            values: event_values,
        },
        _ => return None,
    };
    Some(Arc::new(kind))
}

#[cfg(test)]
mod tests {
    use super::super::for_resource;
    use crate::selectors::FieldSelector;
    use serde_json::json;

    /// (group, plural, object, selector, converts, matches)
    #[test]
    fn selects_like_upstream() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}]}
        });
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        let ev = json!({"metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Started",
            "reportingComponent": "kubelet", "type": "Normal"});
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        let rs = json!({"metadata": {"name": "r"}, "status": {"replicas": 3}});
        let cases = [
            ("", "pods", &pod, "spec.nodeName=n1", true, true),
            ("", "pods", &pod, "spec.host=n1", true, true),
            ("", "pods", &pod, "spec.hostNetwork=false", true, true),
            ("", "pods", &pod, "status.phase!=Running", true, false),
            ("", "pods", &pod, "status.podIP=10.0.0.5", true, true),
            ("", "pods", &pod, "status.podIPs=10.0.0.5", true, false),
            ("", "pods", &pod, "spec.nope=x", false, false),
            ("", "nodes", &node, "spec.unschedulable=true", true, true),
            ("", "nodes", &node, "metadata.namespace=x", false, false),
            (
                "",
                "events",
                &ev,
                "involvedObject.name=web,reason=Started",
                true,
                true,
            ),
            ("", "events", &ev, "source=kubelet", true, true),
            (
                "events.k8s.io",
                "events",
                &ev,
                "regarding.kind=Pod",
                true,
                true,
            ),
            (
                "events.k8s.io",
                "events",
                &ev,
                "reportingController=kubelet",
                true,
                true,
            ),
            (
                "events.k8s.io",
                "events",
                &ev,
                "involvedObject.kind=Pod",
                false,
                false,
            ),
            ("batch", "jobs", &job, "status.successful=2", true, true),
            (
                "apps",
                "replicasets",
                &rs,
                "status.replicas=3",
                false,
                false,
            ),
            (
                "",
                "replicationcontrollers",
                &rs,
                "status.replicas=3",
                true,
                true,
            ),
        ];
        for (group, plural, obj, sel, converts, matches) in cases {
            let f = for_resource(group, plural);
            let parsed = FieldSelector::parse(sel).unwrap();
            match parsed.convert(f.as_ref()) {
                Ok(s) => {
                    assert!(converts, "{plural} {sel} should not convert");
                    assert_eq!(s.matches(&f.fields(obj)), matches, "{plural} {sel}");
                }
                Err(e) => assert!(!converts, "{plural} {sel}: {e}"),
            }
        }
    }

    #[test]
    fn rejection_messages() {
        let msg = |g: &str, p: &str, l: &str| for_resource(g, p).convert_label(l).unwrap_err();
        assert_eq!(msg("", "pods", "x"), "field label not supported: x");
        assert_eq!(
            msg("batch", "jobs", "x"),
            r#"field label "x" not supported for Job"#
        );
        assert_eq!(
            msg("apps", "replicasets", "status.replicas"),
            r#""status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
    }
}
