//! Pod disruption budgets and horizontal pod autoscalers.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, arr, int, int_or_string, name, s};
use super::{AGE, Col, NAME, col};

pub(super) const PDB: &[Col] = &[
    NAME,
    col("Min Available", "string", "Pods that must stay available."),
    col(
        "Max Unavailable",
        "string",
        "Pods that may be unavailable at once.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Pods that may be disrupted right now.",
    ),
    AGE,
];

pub(super) fn pdb(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let or_na = |v: &Value| {
        if v.is_null() {
            "N/A".to_string()
        } else {
            int_or_string(v)
        }
    };
    vec![
        name(obj),
        or_na(&spec["minAvailable"]).into(),
        or_na(&spec["maxUnavailable"]).into(),
        int(&obj["status"]["disruptionsAllowed"]).into(),
        age(obj, now),
    ]
}

pub(super) const HPA: &[Col] = &[
    NAME,
    col(
        "Reference",
        "string",
        "The object whose scale the autoscaler sets, as Kind/name.",
    ),
    col(
        "Targets",
        "string",
        "Current and target values of the metrics, the first two of them.",
    ),
    col(
        "MinPods",
        "string",
        "The fewest replicas the autoscaler sets.",
    ),
    col(
        "MaxPods",
        "string",
        "The most replicas the autoscaler sets.",
    ),
    col("Replicas", "string", "The replicas the target has now."),
    AGE,
];

/// A quantity, or Go's rendering of a nil one.
fn qty(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        other => int_or_string(other),
    }
}

/// `current/target` for one metric of an autoscaling/v2 spec, upstream's
/// `formatHPAMetrics` rules.
fn metric(spec: &Value, status: Option<&Value>) -> String {
    // The status of the same kind at the same position, if any.
    let kind_key = |t: &str| match t {
        "External" => "external",
        "Pods" => "pods",
        "Object" => "object",
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        _ => "",
    };
    let t = s(&spec["type"]);
    let key = kind_key(t);
    if key.is_empty() {
        return "<unknown type>".to_string();
    }
    let source = &spec[key];
    let target = &source["target"];
    let current = status.map(|st| &st[key]).filter(|c| c.is_object());
    let current_field = |f: &str| match current {
        Some(c) if !c["current"][f].is_null() => int_or_string(&c["current"][f]),
        _ => "<unknown>".to_string(),
    };
    match t {
        "External" | "Object" if !target["averageValue"].is_null() => format!(
            "{}/{} (avg)",
            current_field("averageValue"),
            qty(&target["averageValue"])
        ),
        "External" | "Object" => {
            let cur = match current {
                Some(c) => qty(&c["current"]["value"]),
                None => "<unknown>".to_string(),
            };
            format!("{cur}/{}", qty(&target["value"]))
        }
        "Pods" => {
            let cur = match current {
                Some(c) => qty(&c["current"]["averageValue"]),
                None => "<unknown>".to_string(),
            };
            format!("{cur}/{}", qty(&target["averageValue"]))
        }
        _ => {
            // Resource and ContainerResource: value or utilization.
            let resource = s(&source["name"]);
            if !target["averageValue"].is_null() {
                let cur = match current {
                    Some(c) => qty(&c["current"]["averageValue"]),
                    None => "<unknown>".to_string(),
                };
                format!("{resource}: {cur}/{}", qty(&target["averageValue"]))
            } else {
                let cur = match current.map(|c| &c["current"]["averageUtilization"]) {
                    Some(Value::Number(n)) => format!("{n}%"),
                    _ => "<unknown>".to_string(),
                };
                let tgt = match &target["averageUtilization"] {
                    Value::Number(n) => format!("{n}%"),
                    _ => "<auto>".to_string(),
                };
                format!("{resource}: {cur}/{tgt}")
            }
        }
    }
}

fn metrics(obj: &Value) -> String {
    let specs = arr(&obj["spec"]["metrics"]);
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let statuses = arr(&obj["status"]["currentMetrics"]);
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, m)| metric(m, statuses.get(i)))
        .collect();
    let shown = list[..list.len().min(2)].join(", ");
    if list.len() > 2 {
        format!("{shown} + {} more...", list.len() - 2)
    } else {
        shown
    }
}

pub(super) fn hpa(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let target = &spec["scaleTargetRef"];
    let min = match spec["minReplicas"].as_i64() {
        Some(n) => n.to_string(),
        None => "<unset>".to_string(),
    };
    vec![
        name(obj),
        format!("{}/{}", s(&target["kind"]), s(&target["name"])).into(),
        metrics(obj).into(),
        min.into(),
        int(&spec["maxReplicas"]).into(),
        int(&obj["status"]["currentReplicas"]).into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn pdb_cells() {
        let p = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            &pdb(&p, now())[1..4],
            &[json!("50%"), json!("N/A"), json!(1)]
        );
        let q = json!({"spec": {"maxUnavailable": 1}});
        assert_eq!(&pdb(&q, now())[1..4], &[json!("N/A"), json!("1"), json!(0)]);
    }

    #[test]
    fn hpa_cells() {
        let h = json!({"metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]},
            "status": {"currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "90m"}}}]}});
        assert_eq!(
            hpa(&h, now())[1..6],
            [
                json!("Deployment/web"),
                json!("cpu: 45%/80%, memory: <unknown>/100Mi + 1 more..."),
                json!("1"),
                json!(10),
                json!(2)
            ]
        );
        let bare = hpa(&json!({"spec": {"maxReplicas": 3}}), now());
        assert_eq!(&bare[2..4], &[json!("<none>"), json!("<unset>")]);
        let ext = json!({"spec": {"metrics": [
            {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "5"}}},
            {"type": "Object", "object": {"target": {"type": "AverageValue", "averageValue": "2"}}}]},
            "status": {"currentMetrics": [{"type": "External", "external": {"current": {"value": "3"}}}]}});
        assert_eq!(hpa(&ext, now())[2], json!("3/5, <unknown>/2 (avg)"));
    }
}
