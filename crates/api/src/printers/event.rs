//! Events, of core/v1 and events.k8s.io/v1 (the same objects; the printer reads
//! either shape).

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{int, s, since};
use super::{Col, NAME_DESCRIPTION, col, wide};

pub(super) const EVENT: &[Col] = &[
    col(
        "Last Seen",
        "string",
        "How long ago the event was last seen.",
    ),
    col("Type", "string", "Normal or Warning."),
    col(
        "Reason",
        "string",
        "Why the event happened, in one CamelCase word.",
    ),
    col(
        "Object",
        "string",
        "The object the event is about, as kind/name.",
    ),
    wide(
        "Subobject",
        "string",
        "The part of the object the event is about (involvedObject.fieldPath).",
    ),
    wide(
        "Source",
        "string",
        "The component, and host, that reported the event.",
    ),
    col("Message", "string", "What happened, for humans."),
    wide(
        "First Seen",
        "string",
        "How long ago the event was first seen.",
    ),
    wide("Count", "string", "How often the event happened."),
    Col {
        format: "name",
        ..wide("Name", "string", NAME_DESCRIPTION)
    },
];

/// The first of the fields at `paths` that is set.
fn first<'a>(obj: &'a Value, paths: &[&str]) -> &'a Value {
    paths
        .iter()
        .map(|p| &obj[*p])
        .find(|v| !v.is_null())
        .unwrap_or(&Value::Null)
}

fn is_set(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| super::duration::parse_time(t).is_some())
}

pub(super) fn event(obj: &Value, now: Timestamp) -> Vec<Value> {
    let involved = first(obj, &["involvedObject", "regarding"]);
    let source = first(obj, &["source", "deprecatedSource"]);
    let first_ts = first(obj, &["firstTimestamp", "deprecatedFirstTimestamp"]);
    let last_ts = first(obj, &["lastTimestamp", "deprecatedLastTimestamp"]);

    // Newer events carry only eventTime, and series for repeats.
    let first_seen = if is_set(first_ts) {
        since(first_ts, now)
    } else {
        since(&obj["eventTime"], now)
    };
    let mut last_seen = if is_set(last_ts) {
        since(last_ts, now)
    } else {
        first_seen.clone()
    };
    let mut count = int(first(obj, &["count", "deprecatedCount"]));
    let series = &obj["series"];
    if series.is_object() {
        last_seen = since(&series["lastObservedTime"], now);
        count = int(&series["count"]);
    } else if count == 0 {
        count = 1;
    }

    let kind = s(&involved["kind"]).to_lowercase();
    let target = match s(&involved["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = match s(&source["component"]) {
        "" => s(first(obj, &["reportingComponent", "reportingController"])),
        c => c,
    };
    let host = match s(&source["host"]) {
        "" => s(&obj["reportingInstance"]),
        h => h,
    };
    let source_cell = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    let message = s(first(obj, &["message", "note"])).trim();
    vec![
        last_seen,
        s(&obj["type"]).into(),
        s(&obj["reason"]).into(),
        target.into(),
        s(&involved["fieldPath"]).into(),
        source_cell.into(),
        message.into(),
        first_seen,
        count.into(),
        s(&obj["metadata"]["name"]).into(),
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
    fn core_event() {
        let e = json!({"metadata": {"name": "web.17a"}, "type": "Normal", "reason": "Pulled",
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
            "source": {"component": "kubelet", "host": "n1"}, "message": "  Pulled image \"nginx\"\n",
            "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 4});
        assert_eq!(
            event(&e, now()),
            [
                json!("60s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{nginx}"),
                json!("kubelet, n1"),
                json!("Pulled image \"nginx\""),
                json!("60m"),
                json!(4),
                json!("web.17a")
            ]
        );
    }

    #[test]
    fn new_style_event() {
        // Only eventTime and series; no count means a single event.
        let e = json!({"metadata": {"name": "x"}, "type": "Warning", "reason": "FailedScheduling",
            "involvedObject": {"kind": "Pod", "name": "p"}, "reportingComponent": "default-scheduler",
            "eventTime": "2024-05-01T11:58:00.123456Z", "message": "0/1 nodes are available"});
        let row = event(&e, now());
        assert_eq!(
            (&row[0], &row[5], &row[7], &row[8]),
            (
                &json!("119s"),
                &json!("default-scheduler"),
                &json!("119s"),
                &json!(1)
            )
        );
        let mut with_series = e.clone();
        with_series["series"] =
            json!({"count": 7, "lastObservedTime": "2024-05-01T11:59:30.000000Z"});
        let row = event(&with_series, now());
        assert_eq!((&row[0], &row[8]), (&json!("30s"), &json!(7)));
        let bare = event(&json!({}), now());
        assert_eq!((&bare[0], &bare[3]), (&json!("<unknown>"), &json!("")));
    }

    #[test]
    fn events_k8s_io_shape() {
        let e = json!({"metadata": {"name": "x"}, "type": "Normal", "reason": "Started",
            "regarding": {"kind": "Node", "name": "n1"}, "reportingController": "kubelet",
            "reportingInstance": "n1", "note": "started", "eventTime": "2024-05-01T11:59:50.000000Z"});
        let row = event(&e, now());
        assert_eq!(
            (&row[3], &row[5], &row[6]),
            (&json!("node/n1"), &json!("kubelet, n1"), &json!("started"))
        );
    }
}
