//! batch/v1: Jobs (defaults, the generated selector and labels) and CronJobs.

use std::sync::Arc;

use serde_json::{Value, json};

use super::core::pod_defaults::default_template;
use super::core::pod_validation::validate_template;
use super::names::{NameRule, validate_meta};
use super::util::{
    child, default_field, each_mut, existing, go_label_selector, immutable, invalid_rendered,
    non_negative, one_of, str_at,
};
use super::workload::validate_selector_and_template;
use crate::meta;
use crate::selectors::LabelSelector;
use crate::strategy::Strategy;
use crate::validation::FieldError;

pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID: &str = "controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME: &str = "job-name";
/// CronJob names leave room for the 11-character suffix of their jobs.
const CRONJOB_NAME_MAX: usize = 52;

pub fn for_resource(plural: &str) -> Option<Arc<dyn Strategy>> {
    match plural {
        "jobs" => Some(Arc::new(Jobs)),
        "cronjobs" => Some(Arc::new(CronJobs)),
        _ => None,
    }
}

pub struct Jobs;

impl Strategy for Jobs {
    fn default(&self, obj: &mut Value) {
        default_job_labels(obj);
        let Some(spec) = existing(obj, "spec") else {
            return;
        };
        if spec.get("completions").is_none_or(Value::is_null)
            && spec.get("parallelism").is_none_or(Value::is_null)
        {
            spec["completions"] = json!(1);
            spec["parallelism"] = json!(1);
        }
        default_field(spec, "parallelism", json!(1));
        let backoff = if spec
            .get("backoffLimitPerIndex")
            .is_some_and(|v| !v.is_null())
        {
            i64::from(i32::MAX)
        } else {
            6
        };
        default_field(spec, "backoffLimit", json!(backoff));
        default_field(spec, "completionMode", json!("NonIndexed"));
        default_field(spec, "suspend", json!(false));
        let replacement = if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null()) {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        default_field(spec, "podReplacementPolicy", json!(replacement));
        if let Some(policy) = existing(spec, "podFailurePolicy") {
            each_mut(policy, "rules", |r| {
                each_mut(r, "onPodConditions", |c| {
                    default_field(c, "status", json!("True"))
                })
            });
        }
        if let Some(t) = existing(spec, "template") {
            default_template(t);
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if obj.pointer("/spec/manualSelector") != Some(&json!(true)) {
            generate_selector(obj);
        }
        default_job_labels(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        for key in [
            "parallelism",
            "completions",
            "backoffLimit",
            "activeDeadlineSeconds",
        ] {
            non_negative(spec, key, &format!("spec.{key}"), &mut errs);
        }
        errs.extend(validate_selector_and_template(spec, "job"));
        job_restart_policy(spec, "spec.template.spec.restartPolicy", &mut errs);
        one_of(
            spec,
            "completionMode",
            "spec.completionMode",
            &["Indexed", "NonIndexed"],
            &mut errs,
        );
        if spec["completionMode"] == "Indexed" && spec["completions"].is_null() {
            errs.push(FieldError::required(
                "spec.completions",
                "when completion mode is Indexed",
            ));
        }
        let manual = spec["manualSelector"] == true;
        if !manual && let Some(uid) = meta::uid(obj) {
            let sel = spec.get("selector").filter(|s| !s.is_null());
            let matches = sel
                .and_then(|s| LabelSelector::from_label_selector(s).ok())
                .is_some_and(|s| s.matches_with(|k| (k == CONTROLLER_UID).then_some(uid)));
            if let Some(sel) = sel
                && !matches
            {
                errs.push(invalid_rendered(
                    "spec.selector",
                    &go_label_selector(sel),
                    "`selector` not auto-generated",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (n, o) = (&new["spec"], &old["spec"]);
        if n.get("selector") != o.get("selector") {
            errs.push(invalid_rendered(
                "spec.selector",
                &n.get("selector").map_or("null".into(), go_label_selector),
                "field is immutable",
            ));
        }
        errs.extend(immutable(
            n.get("completionMode"),
            o.get("completionMode"),
            "spec.completionMode",
        ));
        if n["completionMode"] != "Indexed" {
            errs.extend(immutable(
                n.get("completions"),
                o.get("completions"),
                "spec.completions",
            ));
        }
        let suspended = o["suspend"] == true && old.pointer("/status/startTime").is_none();
        if !suspended && n.get("template") != o.get("template") {
            errs.push(invalid_rendered(
                "spec.template",
                "core.PodTemplateSpec{...}",
                "field is immutable",
            ));
        }
        errs
    }
}

/// Job labels default to the template's when the job has none.
fn default_job_labels(obj: &mut Value) {
    let Some(labels) = obj
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
    else {
        return;
    };
    let m = meta::metadata_mut(obj);
    if m.get("labels")
        .and_then(Value::as_object)
        .is_none_or(|l| l.is_empty())
    {
        m.insert("labels".into(), labels);
    }
}

/// Upstream's `generateSelector`: the uid and name labels on the template, and a
/// selector on the uid.
fn generate_selector(obj: &mut Value) {
    let uid = meta::uid(obj).unwrap_or_default().to_string();
    let name = meta::name(obj).map(str::to_string);
    let Some(spec) = existing(obj, "spec") else {
        return;
    };
    if let Some(labels) = child(spec, "template")
        .and_then(|t| child(t, "metadata"))
        .and_then(|m| child(m, "labels"))
        .and_then(Value::as_object_mut)
    {
        if let Some(name) = &name {
            for key in [LEGACY_JOB_NAME, JOB_NAME] {
                labels.entry(key).or_insert_with(|| json!(name));
            }
        }
        for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
            labels.entry(key).or_insert_with(|| json!(uid));
        }
    }
    if let Some(match_labels) = child(spec, "selector")
        .and_then(|s| child(s, "matchLabels"))
        .and_then(Value::as_object_mut)
    {
        match_labels
            .entry(CONTROLLER_UID)
            .or_insert_with(|| json!(uid));
    }
}

fn job_restart_policy(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let policy = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if policy != "OnFailure" && policy != "Never" {
        errs.push(FieldError::not_supported(
            path,
            policy,
            &["OnFailure", "Never"],
        ));
    }
}

pub struct CronJobs;

impl Strategy for CronJobs {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = existing(obj, "spec") else {
            return;
        };
        default_field(spec, "concurrencyPolicy", json!("Allow"));
        default_field(spec, "suspend", json!(false));
        default_field(spec, "successfulJobsHistoryLimit", json!(3));
        default_field(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(t) = spec
            .pointer_mut("/jobTemplate/spec/template")
            .filter(|t| t.is_object())
        {
            default_template(t);
        }
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn resets_status_on_create(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = validate_meta(obj, NameRule::Subdomain);
        if let Some(name) = meta::name(obj)
            && name.len() > CRONJOB_NAME_MAX
        {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("must be no more than {CRONJOB_NAME_MAX} characters"),
            ));
        }
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        if str_at(spec, "schedule").is_empty() {
            errs.push(FieldError::required("spec.schedule", ""));
        }
        one_of(
            spec,
            "concurrencyPolicy",
            "spec.concurrencyPolicy",
            &["Allow", "Forbid", "Replace"],
            &mut errs,
        );
        for key in [
            "startingDeadlineSeconds",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
        ] {
            non_negative(spec, key, &format!("spec.{key}"), &mut errs);
        }
        let job_spec = spec.pointer("/jobTemplate/spec").unwrap_or(&Value::Null);
        errs.extend(validate_template(
            job_spec.get("template"),
            "spec.jobTemplate.spec.template",
        ));
        job_restart_policy(
            job_spec,
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            &mut errs,
        );
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Value {
        json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}})
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let mut j = job();
        Jobs.default(&mut j);
        Jobs.prepare_for_create(&mut j);
        let spec = &j["spec"];
        assert_eq!(
            (&spec["completions"], &spec["parallelism"]),
            (&json!(1), &json!(1))
        );
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {CONTROLLER_UID: "u1"}})
        );
        let labels = &spec["template"]["metadata"]["labels"];
        assert_eq!(labels[JOB_NAME], "pi");
        assert_eq!(labels[LEGACY_CONTROLLER_UID], "u1");
        assert_eq!(j["metadata"]["labels"], *labels);
        assert!(Jobs.validate(&j).is_empty(), "{:?}", Jobs.validate(&j));
    }

    #[test]
    fn job_restart_policy_must_not_be_always() {
        let mut j = job();
        j["spec"]["template"]["spec"]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        Jobs.default(&mut j);
        Jobs.prepare_for_create(&mut j);
        let errs: Vec<String> = Jobs.validate(&j).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
            ]
        );
    }

    #[test]
    fn manual_selectors_must_be_asked_for() {
        let mut j = job();
        j["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        j["spec"]["template"]["metadata"] = json!({"labels": {"app": "x"}});
        Jobs.default(&mut j);
        Jobs.prepare_for_create(&mut j);
        let errs = Jobs.validate(&j);
        assert!(
            errs[0]
                .to_string()
                .ends_with("`selector` not auto-generated")
        );
    }

    #[test]
    fn cronjob_defaults() {
        let mut c = json!({"metadata": {"name": "c"}, "spec": {"schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                "containers": [{"name": "a", "image": "busybox"}]}}}}}});
        CronJobs.default(&mut c);
        let spec = &c["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
        assert_eq!(
            spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
            "ClusterFirst"
        );
        assert!(CronJobs.validate(&c).is_empty());
        c["metadata"]["name"] = json!("a".repeat(53));
        assert_eq!(
            CronJobs.validate(&c)[0].to_string(),
            format!(
                r#"metadata.name: Invalid value: "{}": must be no more than 52 characters"#,
                "a".repeat(53)
            )
        );
    }
}
