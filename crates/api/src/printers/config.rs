//! Config maps, secrets, service accounts, resource quotas, leases, priority classes.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, count, int, name, quantity, s};
use super::{AGE, Col, NAME, col};

pub(super) const CONFIG_MAP: &[Col] = &[
    NAME,
    col("Data", "string", "Number of keys in data and binaryData."),
    AGE,
];

pub(super) fn config_map(obj: &Value, now: Timestamp) -> Vec<Value> {
    let keys = count(&obj["data"]) + count(&obj["binaryData"]);
    vec![name(obj), keys.into(), age(obj, now)]
}

pub(super) const SECRET: &[Col] = &[
    NAME,
    col(
        "Type",
        "string",
        "The secret's type, e.g. Opaque or kubernetes.io/tls.",
    ),
    col("Data", "string", "Number of keys in data."),
    AGE,
];

pub(super) fn secret(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        s(&obj["type"]).into(),
        count(&obj["data"]).into(),
        age(obj, now),
    ]
}

pub(super) const SERVICE_ACCOUNT: &[Col] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed for the account.",
    ),
    AGE,
];

pub(super) fn service_account(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), count(&obj["secrets"]).into(), age(obj, now)]
}

pub(super) const RESOURCE_QUOTA: &[Col] = &[
    NAME,
    col(
        "Request",
        "string",
        "Used and hard amounts of the quota's request (non-limit) resources.",
    ),
    col(
        "Limit",
        "string",
        "Used and hard amounts of the quota's limits.* resources.",
    ),
    AGE,
];

/// `resource: used/hard` pairs, sorted by resource, limits.* apart from the rest.
pub(super) fn resource_quota(obj: &Value, now: Timestamp) -> Vec<Value> {
    let status = &obj["status"];
    let mut names: Vec<&String> = status["hard"]
        .as_object()
        .map(|h| h.keys().collect())
        .unwrap_or_default();
    names.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for r in names {
        let entry = format!(
            "{r}: {}/{}",
            quantity(&status["used"][r.as_str()]),
            quantity(&status["hard"][r.as_str()])
        );
        if r.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(obj),
        requests.join(", ").into(),
        limits.join(", ").into(),
        age(obj, now),
    ]
}

pub(super) const LEASE: &[Col] = &[
    NAME,
    col("Holder", "string", "Who holds the lease now."),
    AGE,
];

pub(super) fn lease(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        s(&obj["spec"]["holderIdentity"]).into(),
        age(obj, now),
    ]
}

pub(super) const PRIORITY_CLASS: &[Col] = &[
    NAME,
    col("Value", "integer", "The priority pods of this class get."),
    col(
        "Global-Default",
        "boolean",
        "Whether pods without a class get this one.",
    ),
    AGE,
    col(
        "PreemptionPolicy",
        "string",
        "Whether pods of this class may preempt lower-priority pods.",
    ),
];

pub(super) fn priority_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        int(&obj["value"]).into(),
        obj["globalDefault"].as_bool().unwrap_or(false).into(),
        age(obj, now),
        s(&obj["preemptionPolicy"]).into(),
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
    fn counts_keys() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(config_map(&cm, now())[1], json!(3));
        let sec = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}});
        assert_eq!(&secret(&sec, now())[1..3], &[json!("Opaque"), json!(1)]);
        let sa = json!({"metadata": {"name": "default"}});
        assert_eq!(service_account(&sa, now())[1], json!(0));
    }

    #[test]
    fn resource_quota_cells() {
        let rq = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi", "limits.cpu": "2"},
            "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}});
        assert_eq!(
            &resource_quota(&rq, now())[1..3],
            &[
                json!("pods: 3/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 1/2, limits.memory: 0/2Gi")
            ]
        );
    }

    #[test]
    fn lease_and_priority_class_cells() {
        let l =
            json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "n1_abc"}});
        assert_eq!(lease(&l, now())[1], json!("n1_abc"));
        let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000,
            "preemptionPolicy": "PreemptLowerPriority"});
        let row = priority_class(&pc, now());
        assert_eq!(
            (&row[1], &row[2], &row[4]),
            (
                &json!(2000001000),
                &json!(false),
                &json!("PreemptLowerPriority")
            )
        );
    }
}
