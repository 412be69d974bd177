//! What the controllers' types share: the pod template with its selector, replicas,
//! and the immutable selector of apps/v1.

use serde_json::Value;

use crate::selectors::LabelSelector;
use crate::strategies::core::pod_validation::validate_template;
use crate::strategies::names::validate_labels;
use crate::strategies::util::{go_label_selector, go_string_map, invalid_rendered, non_negative};
use crate::validation::FieldError;

/// The rendered `selector does not match template labels` message.
pub const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// A `metav1.LabelSelector` at `spec.selector`: required, not empty, valid, and
/// matching `spec.template.metadata.labels`; `what` names the type in upstream's
/// `empty selector is invalid for <what>`.
pub fn validate_selector_and_template(spec: &Value, what: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let template = spec.get("template");
    let labels = template.and_then(|t| t.pointer("/metadata/labels"));
    match spec.get("selector").filter(|s| !s.is_null()) {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            let empty = sel
                .get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty())
                && sel
                    .get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.is_empty());
            if empty {
                errs.push(invalid_rendered(
                    "spec.selector",
                    &go_label_selector(sel),
                    &format!("empty selector is invalid for {what}"),
                ));
            }
            errs.extend(validate_labels(
                sel.get("matchLabels"),
                "spec.selector.matchLabels",
            ));
            match LabelSelector::from_label_selector(sel) {
                Err(e) => errs.push(invalid_rendered(
                    "spec.selector",
                    &go_label_selector(sel),
                    &e.to_string(),
                )),
                Ok(s)
                    if !empty
                        && template.is_some()
                        && !s.matches(labels.and_then(Value::as_object)) =>
                {
                    errs.push(invalid_rendered(
                        "spec.template.metadata.labels",
                        &go_string_map(labels),
                        SELECTOR_MISMATCH,
                    ));
                }
                Ok(_) => {}
            }
        }
    }
    errs.extend(validate_template(template, "spec.template"));
    errs
}

/// A template of a long-running workload: restartPolicy must be Always.
pub fn validate_always_restart(spec: &Value, errs: &mut Vec<FieldError>) {
    if let Some(p) = spec
        .pointer("/template/spec/restartPolicy")
        .and_then(Value::as_str)
        && p != "Always"
    {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            p,
            &["Always"],
        ));
    }
}

/// `spec.replicas` and `spec.minReadySeconds` may not be negative.
pub fn validate_counts(spec: &Value, errs: &mut Vec<FieldError>) {
    non_negative(spec, "replicas", "spec.replicas", errs);
    non_negative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    non_negative(
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
        errs,
    );
}

/// apps/v1: `spec.selector` may not change.
pub fn immutable_selector(new: &Value, old: &Value) -> Option<FieldError> {
    let (n, o) = (new.pointer("/spec/selector"), old.pointer("/spec/selector"));
    (n != o).then(|| {
        invalid_rendered(
            "spec.selector",
            &n.map_or("null".to_string(), go_label_selector),
            "field is immutable",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_must_match_template() {
        let spec = json!({
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}},
        });
        let errs: Vec<String> = validate_selector_and_template(&spec, "deployment")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"b"}: `selector` does not match template `labels`"#
            ]
        );
        let errs = validate_selector_and_template(&json!({"template": spec["template"]}), "x");
        assert_eq!(errs[0].to_string(), "spec.selector: Required value");
    }

    #[test]
    fn selector_is_immutable() {
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}}});
        let new = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
        assert_eq!(
            immutable_selector(&new, &old).unwrap().to_string(),
            r#"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"b"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
        );
        assert!(immutable_selector(&old, &old).is_none());
    }
}
