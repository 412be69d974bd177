//! Authorization reviews: SubjectAccessReview, LocalSubjectAccessReview and
//! SelfSubjectAccessReview ask the authorizer chain about one request (`kubectl auth
//! can-i`); SelfSubjectRulesReview lists what the caller may do in a namespace
//! (`kubectl auth can-i --list`).

use api::selectors::{FieldOperator, FieldRequirement, FieldSelector};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Value, json};

use crate::auth::{Attributes, Authorizer, Decision, UserInfo};
use crate::error::{ApiError, Result};

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The status of an access review of `spec` for `subject`; `path_ns` is the namespace
/// of a LocalSubjectAccessReview, which its resource attributes must match.
pub fn access_review(
    authorizer: &dyn Authorizer,
    subject: &UserInfo,
    spec: &Value,
    path_ns: Option<&str>,
) -> Result<Value> {
    let ra = &spec["resourceAttributes"];
    let nra = &spec["nonResourceAttributes"];
    let attrs = if ra.is_object() {
        let namespace = s(&ra["namespace"]);
        if let Some(ns) = path_ns
            && namespace != ns
        {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
        Attributes {
            verb: s(&ra["verb"]),
            group: s(&ra["group"]),
            resource: s(&ra["resource"]),
            subresource: s(&ra["subresource"]),
            namespace,
            name: s(&ra["name"]),
            path: None,
            field_selector: field_selector(&ra["fieldSelector"]),
        }
    } else if nra.is_object() {
        Attributes::non_resource(&s(&nra["verb"]), &s(&nra["path"]))
    } else {
        return Err(ApiError::bad_request(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    Ok(match authorizer.authorize(subject, &attrs) {
        Decision::Allow => json!({"allowed": true}),
        Decision::Deny(reason) => json!({"allowed": false, "denied": true, "reason": reason}),
        Decision::NoOpinion(reason) if reason.is_empty() => json!({"allowed": false}),
        Decision::NoOpinion(reason) => json!({"allowed": false, "reason": reason}),
    })
}

/// A review's `fieldSelector` (a raw selector, or requirements with one value per
/// `In`/`NotIn`) as the authorizers see it; one that does not convert selects
/// nothing, as upstream leaves it to authorizers that ignore the error.
fn field_selector(v: &Value) -> Vec<FieldRequirement> {
    if let Some(raw) = v["rawSelector"].as_str() {
        return FieldSelector::parse(raw)
            .map(|f| f.requirements().to_vec())
            .unwrap_or_default();
    }
    let mut out = Vec::new();
    for r in v["requirements"].as_array().into_iter().flatten() {
        let operator = match r["operator"].as_str() {
            Some("In") => FieldOperator::Equals,
            Some("NotIn") => FieldOperator::NotEquals,
            _ => return Vec::new(),
        };
        let [value] = r["values"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        else {
            return Vec::new();
        };
        out.push(FieldRequirement {
            field: s(&r["key"]),
            operator,
            value: s(value),
        });
    }
    out
}

/// The subject a SubjectAccessReview's spec names.
pub fn spec_user(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect()
    };
    UserInfo {
        username: s(&spec["user"]),
        uid: s(&spec["uid"]),
        groups: strings(&spec["groups"]),
        extra: spec["extra"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), strings(v)))
            .collect(),
    }
}

/// The status of a SelfSubjectRulesReview of `user` in `namespace`.
pub fn rules_review(authorizer: &dyn Authorizer, user: &UserInfo, namespace: &str) -> Value {
    let Some(rules) = authorizer.rules_for(user, namespace) else {
        return json!({"resourceRules": [], "nonResourceRules": [], "incomplete": true});
    };
    let (paths, resources): (Vec<&PolicyRule>, Vec<&PolicyRule>) = rules
        .rules
        .iter()
        .partition(|r| r.non_resource_urls.as_ref().is_some_and(|u| !u.is_empty()));
    let resource_rules: Vec<Value> = resources
        .iter()
        .map(|r| {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if let Some(names) = r.resource_names.as_ref().filter(|n| !n.is_empty()) {
                v["resourceNames"] = json!(names);
            }
            v
        })
        .collect();
    let non_resource_rules: Vec<Value> = paths
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": rules.incomplete,
    });
    if !rules.errors.is_empty() {
        status["evaluationError"] = json!(rules.errors.join(", "));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_field_selectors_as_upstream_converts_them() {
        let want = FieldSelector::parse("spec.nodeName=n1").unwrap();
        let raw = json!({"rawSelector": "spec.nodeName=n1"});
        assert_eq!(field_selector(&raw), want.requirements());
        let reqs = json!({"requirements": [
            {"key": "spec.nodeName", "operator": "In", "values": ["n1"]}
        ]});
        assert_eq!(field_selector(&reqs), want.requirements());
        for bad in [
            json!({"requirements": [{"key": "a", "operator": "In", "values": ["x", "y"]}]}),
            json!({"requirements": [{"key": "a", "operator": "Exists"}]}),
            json!({"rawSelector": "a"}),
            Value::Null,
        ] {
            assert!(field_selector(&bad).is_empty(), "{bad}");
        }
    }
}
