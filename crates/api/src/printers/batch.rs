//! Jobs and cron jobs.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, arr, containers, count, int, name, s, since};
use super::duration::{human_duration, parse_time};
use super::{AGE, Col, NAME, col, wide};
use crate::selectors::format_label_selector;

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
    "The label selector that picks the job's pods.",
);

pub(super) const JOB: &[Col] = &[
    NAME,
    col(
        "Status",
        "string",
        "The job's state: Running, Complete, Failed, Suspended, ...",
    ),
    col(
        "Completions",
        "string",
        "Pods that succeeded, of the completions wanted.",
    ),
    col(
        "Duration",
        "string",
        "How long the job ran, or has been running.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

/// The status of the job's first condition of `kind` is True.
fn has_condition(status: &Value, kind: &str) -> bool {
    arr(&status["conditions"])
        .iter()
        .find(|c| s(&c["type"]) == kind)
        .is_some_and(|c| s(&c["status"]) == "True")
}

pub(super) fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int(&spec["parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = status["startTime"].as_str().and_then(parse_time);
    let end = status["completionTime"].as_str().and_then(parse_time);
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now.duration_since(s)),
        (Some(s), Some(e)) => human_duration(e.duration_since(s)),
    };
    let state = if has_condition(status, "Complete") {
        "Complete"
    } else if has_condition(status, "Failed") {
        "Failed"
    } else if obj["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else if has_condition(status, "Suspended") {
        "Suspended"
    } else if has_condition(status, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(&spec["template"]["spec"]);
    vec![
        name(obj),
        state.into(),
        completions.into(),
        duration.into(),
        age(obj, now),
        names,
        images,
        format_label_selector(&spec["selector"]).into(),
    ]
}

pub(super) const CRON_JOB: &[Col] = &[
    NAME,
    col(
        "Schedule",
        "string",
        "When jobs are created, in cron syntax.",
    ),
    col(
        "Timezone",
        "string",
        "The time zone the schedule is read in.",
    ),
    col("Suspend", "boolean", "Whether new jobs are held back."),
    col("Active", "integer", "Jobs running now."),
    col(
        "Last Schedule",
        "string",
        "How long ago a job was last scheduled.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let job_spec = &spec["jobTemplate"]["spec"];
    let last = if status["lastScheduleTime"].is_string() {
        since(&status["lastScheduleTime"], now)
    } else {
        "<none>".into()
    };
    // Upstream prints the *bool as True / False, or <unset>.
    let suspend = match spec["suspend"].as_bool() {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let (names, images) = containers(&job_spec["template"]["spec"]);
    vec![
        name(obj),
        s(&spec["schedule"]).into(),
        spec["timeZone"].as_str().unwrap_or("<none>").into(),
        suspend.into(),
        count(&status["active"]).into(),
        last,
        age(obj, now),
        names,
        images,
        format_label_selector(&job_spec["selector"]).into(),
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
    fn job_cells() {
        // (spec, status, metadata extra, (status, completions, duration))
        let cases = [
            (
                json!({"completions": 3}),
                json!({"succeeded": 1, "startTime": "2024-05-01T11:59:00Z"}),
                ("Running", "1/3", "60s"),
            ),
            (
                json!({"parallelism": 2}),
                json!({}),
                ("Running", "0/1 of 2", ""),
            ),
            (
                json!({}),
                json!({"succeeded": 1, "startTime": "2024-05-01T11:00:00Z",
                "completionTime": "2024-05-01T11:00:42Z",
                "conditions": [{"type": "Complete", "status": "True"}]}),
                ("Complete", "1/1", "42s"),
            ),
            (
                json!({}),
                json!({"conditions": [{"type": "Failed", "status": "True"}]}),
                ("Failed", "0/1", ""),
            ),
            (
                json!({}),
                json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
                ("Suspended", "0/1", ""),
            ),
            (
                json!({}),
                json!({"conditions": [{"type": "Complete", "status": "False"},
                {"type": "FailureTarget", "status": "True"}]}),
                ("FailureTarget", "0/1", ""),
            ),
        ];
        for (spec, status, (state, completions, duration)) in cases {
            let j = json!({"metadata": {"name": "j"}, "spec": spec, "status": status});
            let row = job(&j, now());
            assert_eq!(
                &row[1..4],
                &[json!(state), json!(completions), json!(duration)],
                "{j}"
            );
        }
        let deleting =
            json!({"metadata": {"name": "j", "deletionTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(job(&deleting, now())[1], json!("Terminating"));
    }

    #[test]
    fn cron_job_cells() {
        let cj = json!({"metadata": {"name": "c"},
            "spec": {"schedule": "*/5 * * * *", "suspend": false},
            "status": {"active": [{"name": "c-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}});
        assert_eq!(
            &cron_job(&cj, now())[1..6],
            &[
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("5m")
            ]
        );
        let bare = cron_job(&json!({}), now());
        assert_eq!((&bare[3], &bare[5]), (&json!("<unset>"), &json!("<none>")));
    }
}
