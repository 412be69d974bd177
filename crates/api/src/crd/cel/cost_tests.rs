//! The cost limits through `validate` and `validate_rules`: the runtime budget
//! (`library/cost.rs`) and the estimate checked when a CRD is written
//! (`estimate.rs`).

use serde_json::json;

use super::{compile_schema, validate, validate_rules};

fn ints(n: i64) -> Vec<i64> {
    (0..n).collect()
}

/// A rule too costly to finish stops validation with upstream's message; the
/// rules after it do not run.
#[test]
fn a_rule_past_the_per_call_limit_is_cancelled() {
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"n": {"type": "array", "items": {"type": "integer"},
            "x-kubernetes-validations": [
                {"rule": "self.all(x, self.all(y, self.all(z, x + y + z >= 0)))"},
                {"rule": "size(self) == 0"},
            ]}},
    }}});
    let node = compile_schema(&schema).expect("rules");
    let started = std::time::Instant::now();
    let got: Vec<String> = validate(&node, &json!({"spec": {"n": ints(500)}}), None)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        got,
        [
            r#"spec.n: Invalid value: "array": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.all(x, self.all(y, self.all(z, x + y + z >= 0)))"#
        ]
    );
    // 500³ iterations would take minutes; the budget stops it early.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// A messageExpression past the limit: upstream's error replaces the rule's.
#[test]
fn a_message_expression_past_the_per_call_limit_is_cancelled() {
    let msg = "self.all(x, self.all(y, self.all(z, x + y + z >= 0))) ? 'a' : 'b'";
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"n": {"type": "array", "maxItems": 1000, "items": {"type": "integer"},
            "x-kubernetes-validations": [{"rule": "size(self) == 0", "messageExpression": msg}]}},
    }}});
    let node = compile_schema(&schema).expect("rules");
    let got: Vec<String> = validate(&node, &json!({"spec": {"n": ints(500)}}), None)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        got,
        [format!(
            r#"spec.n: Invalid value: "array": no further validation rules will be run due to call cost exceeds limit for messageExpression: {msg:?}"#
        )]
    );
}

/// Rules each within their limit, together past the budget of one object.
#[test]
fn rules_past_the_runtime_budget_stop_validation() {
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "properties": {"rows": {"type": "array", "items": {
            "type": "array", "items": {"type": "integer"},
            "x-kubernetes-validations": [{"rule": "self.all(x, self.all(y, x != y || x == y))"}],
        }}},
    }}});
    let node = compile_schema(&schema).expect("rules");
    let rows: Vec<Vec<i64>> = (0..60).map(|_| ints(200)).collect();
    let got: Vec<String> = validate(&node, &json!({"spec": {"rows": rows}}), None)
        .iter()
        .map(|e| e.to_string())
        .collect();
    let stop = "validation failed due to running out of cost budget, no further validation rules will be run";
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("spec.rows[") && got[0].ends_with(stop),
        "{got:?}"
    );
}

/// upstream refuses, when the CRD is written, a rule whose estimated cost is past
/// its limit; `maxItems` brings it within.
#[test]
fn costly_rules_make_the_crd_invalid() {
    let s = |max: Option<u64>| {
        let mut list = json!({"type": "array", "items": {"type": "string"},
            "x-kubernetes-validations": [{"rule": "self.all(x, self.exists(y, x != y))"}]});
        if let Some(m) = max {
            list["maxItems"] = json!(m);
        }
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"tags": list}}}})
    };
    let got: Vec<String> = validate_rules(&s(None), "s")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "s.properties[spec].properties[tags].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        ]
    );
    assert!(validate_rules(&s(Some(100)), "s").is_empty());
}
