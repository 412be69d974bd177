//! Workload controllers: deployments, replica sets, replication controllers,
//! stateful sets, daemon sets, controller revisions, pod templates.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, containers, controller_of, int, name, replicas, s};
use super::{AGE, Col, NAME, col, wide};
use crate::selectors::{LabelSelector, format_label_selector, format_labels};

const CONTAINERS: Col = wide(
    "Containers",
    "string",
    "Names of the containers in the pod template.",
);
const IMAGES: Col = wide(
    "Images",
    "string",
    "Images of the containers in the pod template.",
);
const SELECTOR: Col = wide(
    "Selector",
    "string",
    "The label selector that picks the pods this object manages.",
);

pub(super) const POD_TEMPLATE: &[Col] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of the containers in the template.",
    ),
    col(
        "Images",
        "string",
        "Images of the containers in the template.",
    ),
    col(
        "Pod Labels",
        "string",
        "Labels the template gives its pods.",
    ),
];

pub(super) fn pod_template(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let template = &obj["template"];
    let (names, images) = containers(&template["spec"]);
    let labels = format_labels(template["metadata"]["labels"].as_object());
    vec![name(obj), names, images, labels.into()]
}

const DESIRED: Col = col(
    "Desired",
    "integer",
    "How many pods are wanted (spec.replicas).",
);
const CURRENT: Col = col(
    "Current",
    "integer",
    "How many pods exist (status.replicas).",
);
const READY_COUNT: Col = col(
    "Ready",
    "integer",
    "How many pods are ready (status.readyReplicas).",
);

pub(super) const REPLICATION_CONTROLLER: &[Col] = &[
    NAME,
    DESIRED,
    CURRENT,
    READY_COUNT,
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn replication_controller(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let (names, images) = containers(&spec["template"]["spec"]);
    vec![
        name(obj),
        replicas(spec).into(),
        int(&status["replicas"]).into(),
        int(&status["readyReplicas"]).into(),
        age(obj, now),
        names,
        images,
        format_labels(spec["selector"].as_object()).into(),
    ]
}

pub(super) const REPLICA_SET: &[Col] = REPLICATION_CONTROLLER;

pub(super) fn replica_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut row = replication_controller(obj, now);
    row[7] = format_label_selector(&obj["spec"]["selector"]).into();
    row
}

pub(super) const DEPLOYMENT: &[Col] = &[
    NAME,
    col("Ready", "string", "Ready pods of the wanted number."),
    col(
        "Up-to-date",
        "string",
        "Pods running the current template (status.updatedReplicas).",
    ),
    col(
        "Available",
        "string",
        "Pods available to serve (status.availableReplicas).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let (names, images) = containers(&spec["template"]["spec"]);
    // Upstream prints the parsed selector here, "" for none, not "<none>".
    let selector = match LabelSelector::from_label_selector(&spec["selector"]) {
        Ok(sel) => sel.to_string(),
        Err(_) => "<invalid>".to_string(),
    };
    vec![
        name(obj),
        format!("{}/{}", int(&status["readyReplicas"]), replicas(spec)).into(),
        int(&status["updatedReplicas"]).into(),
        int(&status["availableReplicas"]).into(),
        age(obj, now),
        names,
        images,
        selector.into(),
    ]
}

pub(super) const STATEFUL_SET: &[Col] = &[
    NAME,
    col("Ready", "string", "Ready pods of the wanted number."),
    AGE,
    CONTAINERS,
    IMAGES,
];

pub(super) fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let (names, images) = containers(&spec["template"]["spec"]);
    let ready = int(&obj["status"]["readyReplicas"]);
    vec![
        name(obj),
        format!("{ready}/{}", replicas(spec)).into(),
        age(obj, now),
        names,
        images,
    ]
}

pub(super) const DAEMON_SET: &[Col] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Nodes that should run the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "Nodes running at least one daemon pod.",
    ),
    col("Ready", "integer", "Nodes whose daemon pod is ready."),
    col(
        "Up-to-date",
        "integer",
        "Nodes running the current template's pod.",
    ),
    col(
        "Available",
        "integer",
        "Nodes whose daemon pod is available.",
    ),
    col(
        "Node Selector",
        "string",
        "The node labels the pods require (spec.template.spec.nodeSelector).",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let pod_spec = &spec["template"]["spec"];
    let (names, images) = containers(pod_spec);
    vec![
        name(obj),
        int(&status["desiredNumberScheduled"]).into(),
        int(&status["currentNumberScheduled"]).into(),
        int(&status["numberReady"]).into(),
        int(&status["updatedNumberScheduled"]).into(),
        int(&status["numberAvailable"]).into(),
        format_labels(pod_spec["nodeSelector"].as_object()).into(),
        age(obj, now),
        names,
        images,
        format_label_selector(&spec["selector"]).into(),
    ]
}

pub(super) const CONTROLLER_REVISION: &[Col] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The object that owns this revision.",
    ),
    col("Revision", "string", "The revision number."),
    AGE,
];

pub(super) fn controller_revision(obj: &Value, now: Timestamp) -> Vec<Value> {
    let controller = match controller_of(obj) {
        None => "<none>".to_string(),
        Some(r) => {
            // kind.group/name, lower case: "daemonset.apps/fluentd".
            let api_version = s(&r["apiVersion"]);
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            let kind = s(&r["kind"]);
            let name = s(&r["name"]);
            match (group, kind) {
                ("", "") => name.to_string(),
                ("", k) => format!("{}/{name}", k.to_lowercase()),
                (g, k) => format!("{}.{}/{name}", k.to_lowercase(), g.to_lowercase()),
            }
        }
    };
    vec![
        name(obj),
        controller.into(),
        int(&obj["revision"]).into(),
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
    fn deployment_cells() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            deployment(&d, now()),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("5m"),
                json!("nginx"),
                json!("nginx:1"),
                json!("app=web")
            ]
        );
        let bare = deployment(&json!({"metadata": {"name": "x"}}), now());
        assert_eq!(bare[1], json!("0/1"));
        assert_eq!(bare[7], json!(""));
    }

    #[test]
    fn replica_set_and_controller_cells() {
        let rs = json!({"metadata": {"name": "web-1"},
            "spec": {"replicas": 2, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}},
            "status": {"replicas": 2, "readyReplicas": 1}});
        let row = replica_set(&rs, now());
        assert_eq!(&row[1..4], &[json!(2), json!(2), json!(1)]);
        assert_eq!(row[7], json!("app in (web)"));
        let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 0, "selector": {"b": "2", "a": "1"}}});
        let row = replication_controller(&rc, now());
        assert_eq!(row[1], json!(0));
        assert_eq!(row[7], json!("a=1,b=2"));
        assert_eq!(replica_set(&json!({}), now())[7], json!("<none>"));
    }

    #[test]
    fn daemon_set_and_stateful_set_cells() {
        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}});
        let row = daemon_set(&ds, now());
        assert_eq!(
            &row[1..7],
            &[
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux")
            ]
        );
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 1}});
        assert_eq!(stateful_set(&sts, now())[1], json!("1/3"));
    }

    #[test]
    fn controller_revision_names_its_owner() {
        let cr = json!({"metadata": {"name": "agent-5d4", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]},
            "revision": 4});
        assert_eq!(
            &controller_revision(&cr, now())[1..3],
            &[json!("daemonset.apps/agent"), json!(4)]
        );
        assert_eq!(controller_revision(&json!({}), now())[1], json!("<none>"));
    }

    #[test]
    fn pod_template_cells() {
        let pt = json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "j"}]}}});
        assert_eq!(
            pod_template(&pt, now()),
            [json!("t"), json!("a,b"), json!("i,j"), json!("app=x")]
        );
    }
}
