use serde_json::{Value, json};

use super::{compile_schema, validate, validate_rules};

fn schema(spec_rules: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": spec_rules,
        "properties": {
            "replicas": {"type": "integer"},
            "minReplicas": {"type": "integer"},
            "name": {"type": "string"},
            "ratio": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    }}})
}

fn errors(rules: Value, obj: Value, old: Option<Value>) -> Vec<String> {
    let s = schema(rules);
    assert!(
        validate_rules(&s, "s").is_empty(),
        "{:?}",
        validate_rules(&s, "s")
    );
    let node = compile_schema(&s).expect("rules");
    validate(&node, &obj, old.as_ref())
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn self_rule_passes_and_fails_with_upstream_message() {
    let rules = json!([{"rule": "self.minReplicas <= self.replicas"}]);
    assert!(
        errors(
            rules.clone(),
            json!({"spec": {"replicas": 3, "minReplicas": 1}}),
            None
        )
        .is_empty()
    );
    assert_eq!(
        errors(
            rules,
            json!({"spec": {"replicas": 1, "minReplicas": 3}}),
            None
        ),
        [r#"spec: Invalid value: "object": failed rule: self.minReplicas <= self.replicas"#]
    );
}

#[test]
fn message_message_expression_field_path_and_reason() {
    let rules = json!([
        {"rule": "self.replicas < 10", "message": "too many", "fieldPath": ".replicas"},
        {"rule": "self.name.startsWith('a')", "messageExpression": "'name ' + self.name + ' must start with a'", "reason": "FieldValueForbidden"},
        {"rule": "size(self.tags) > 0", "reason": "FieldValueRequired", "message": "tags needed"},
    ]);
    let got = errors(
        rules,
        json!({"spec": {"replicas": 11, "name": "b", "tags": []}}),
        None,
    );
    assert_eq!(
        got,
        [
            r#"spec.replicas: Invalid value: "object": too many"#,
            "spec: Forbidden: name b must start with a",
            "spec: Required value: tags needed",
        ]
    );
}

#[test]
fn transition_rules_run_only_on_update() {
    let rules = json!([{"rule": "self.name == oldSelf.name", "message": "Value is immutable"}]);
    let new = json!({"spec": {"name": "b"}});
    assert!(errors(rules.clone(), new.clone(), None).is_empty());
    let old = json!({"spec": {"name": "a"}});
    assert_eq!(
        errors(rules.clone(), new.clone(), Some(old)),
        [r#"spec: Invalid value: "object": Value is immutable"#]
    );
    assert!(errors(rules, new.clone(), Some(new)).is_empty());
}

#[test]
fn optional_old_self_sees_none_on_create() {
    let rules = json!([{"rule": "!oldSelf.hasValue() || oldSelf.value().name == self.name", "optionalOldSelf": true, "message": "fixed"}]);
    assert!(errors(rules.clone(), json!({"spec": {"name": "b"}}), None).is_empty());
    let got = errors(
        rules,
        json!({"spec": {"name": "b"}}),
        Some(json!({"spec": {"name": "a"}})),
    );
    assert_eq!(got, [r#"spec: Invalid value: "object": fixed"#]);
}

#[test]
fn rules_under_lists_and_maps_run_per_element() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self.lowerAscii() == self"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "size(self) < 4"}]}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}]}},
    }}}});
    assert!(validate_rules(&s, "s").is_empty());
    let node = compile_schema(&s).unwrap();
    let obj = json!({"spec": {"tags": ["ok", "NO"], "labels": {"a": "abcd", "b": "x"},
        "ports": [{"name": "a", "port": 2}, {"name": "b", "port": 3}]}});
    let old = json!({"spec": {"ports": [{"name": "b", "port": 3}, {"name": "a", "port": 1}]}});
    let mut got: Vec<String> = validate(&node, &obj, Some(&old))
        .iter()
        .map(|e| e.to_string())
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            r#"spec.labels[a]: Invalid value: "string": failed rule: size(self) < 4"#,
            r#"spec.ports[0]: Invalid value: "object": port is immutable"#,
            r#"spec.tags[1]: Invalid value: "string": failed rule: self.lowerAscii() == self"#,
        ]
    );
}

#[test]
fn library_functions() {
    let ok = [
        "self.tags.isSorted()",
        "self.tags.indexOf('b') == 1",
        "self.tags.all(t, t.matches('^[a-z]+$'))",
        "self.tags.exists(t, t == 'c') && !self.tags.exists_one(t, t == 'z')",
        "self.tags.map(t, t.upperAscii()) == ['A', 'B', 'C']",
        "self.tags.filter(t, t != 'a').size() == 2",
        "has(self.labels) && !has(self.name)",
        "self.labels.x.endsWith('y') && 'x' in self.labels",
        "[1, 2, 3].sum() == 6 && [3, 1].min() == 1 && [3, 1].max() == 3",
        "self.ratio == 2.0 && type(self.replicas) == int",
        "'abc'.find('[bc]+') == 'bc' && 'a1b2'.findAll('[0-9]') == ['1', '2']",
        "self.labels.x.contains('y') && self.labels.x.indexOf('y') == 1",
        "quantity(self.labels.mem).isLessThan(quantity('1Gi')) && !isQuantity('Three')",
        "url(self.labels.url).getHost() == 'example.com' && isURL(self.labels.url)",
        "cidr(self.labels.net).containsIP(self.labels.ip) && ip(self.labels.ip).family() == 4",
        "cel.bind(t, self.tags, size(t) == 3 && t[0] == 'a')",
        "sets.contains(self.tags, ['c', 'a']) && sets.intersects(self.tags, ['z', 'b'])",
        "!format.dns1123Label().validate(self.tags[0]).hasValue() && format.named('uuid').hasValue()",
    ];
    let labels = json!({"x": "xy", "mem": "512Mi", "url": "https://example.com/a", "net": "10.0.0.0/8", "ip": "10.1.2.3"});
    let obj =
        json!({"spec": {"tags": ["a", "b", "c"], "labels": labels, "ratio": 2, "replicas": 1}});
    for rule in ok {
        let got = errors(json!([{"rule": rule}]), obj.clone(), None);
        assert!(got.is_empty(), "{rule}: {got:?}");
    }
}

#[test]
fn evaluation_errors_are_worded_as_upstream() {
    let got = errors(
        json!([{"rule": "self.name == 'a'"}]),
        json!({"spec": {}}),
        None,
    );
    assert_eq!(
        got,
        [r#"spec: Invalid value: "object": no such key: name evaluating rule: self.name == 'a'"#]
    );
    // With a message, upstream names the rule by it.
    let got = errors(
        json!([{"rule": "self.name == 'a'", "message": "name must be a"}]),
        json!({"spec": {}}),
        None,
    );
    assert_eq!(
        got,
        [r#"spec: Invalid value: "object": no such key: name evaluating rule: name must be a"#]
    );
}

#[test]
fn rules_that_do_not_compile_make_the_crd_invalid() {
    let cases = [
        ("self.replicas <", "compilation failed: ERROR: <input>:1:"),
        (
            "self.replicaz > 1",
            "compilation failed: ERROR: <input>:1:5: undefined field 'replicaz'",
        ),
        (
            "foo == 1",
            "undeclared reference to 'foo' (in container '')",
        ),
        (
            "self.name.frobnicate()",
            "undeclared reference to 'frobnicate' (in container '')",
        ),
        ("self.replicas", "cel expression must evaluate to a bool"),
        (
            "quantity(self.name)",
            "cel expression must evaluate to a bool",
        ),
        (
            "cidr(self.name).ip()",
            "cel expression must evaluate to a bool",
        ),
        (
            "self.replicas + 1",
            "cel expression must evaluate to a bool",
        ),
        (
            "self.name.size",
            "type 'string' does not support field selection",
        ),
    ];
    for (rule, want) in cases {
        let s = schema(json!([{"rule": rule}]));
        let errs = validate_rules(&s, "spec.versions[0].schema.openAPIV3Schema");
        assert_eq!(errs.len(), 1, "{rule}: {errs:?}");
        let e = errs[0].to_string();
        assert!(
            e.starts_with("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"),
            "{e}"
        );
        assert!(e.contains(want), "{rule}: {e}");
    }
}

#[test]
fn entry_fields_are_checked() {
    let s = schema(json!([
        {"rule": ""},
        {"rule": "true", "reason": "Nope"},
        {"rule": "true", "fieldPath": ".nope"},
        {"rule": "self.replicas > 0", "optionalOldSelf": true},
    ]));
    let got: Vec<String> = validate_rules(&s, "p")
        .iter()
        .map(|e| e.to_string())
        .collect();
    let at = "p.properties[spec].x-kubernetes-validations";
    assert_eq!(
        got,
        [
            format!("{at}[0].rule: Required value: rule is not specified"),
            format!(
                r#"{at}[1].reason: Unsupported value: "Nope": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired""#
            ),
            format!(r#"{at}[2].fieldPath: Invalid value: ".nope": fieldPath must be a valid path"#),
            format!(
                "{at}[3].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"
            ),
        ]
    );
}

#[test]
fn root_rules_see_metadata_name() {
    let s = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('x')"}],
        "properties": {"spec": {"type": "object"}}});
    assert!(validate_rules(&s, "s").is_empty());
    let node = compile_schema(&s).unwrap();
    assert!(validate(&node, &json!({"metadata": {"name": "xa"}}), None).is_empty());
    assert_eq!(
        validate(&node, &json!({"metadata": {"name": "a"}}), None).len(),
        1
    );
}

#[test]
fn library_errors_are_worded_as_upstream() {
    let got = errors(
        json!([{"rule": "quantity(self.name).sign() == 1"}]),
        json!({"spec": {"name": "200K"}}),
        None,
    );
    assert_eq!(
        got,
        [
            r#"spec: Invalid value: "object": unable to parse quantity's suffix evaluating rule: quantity(self.name).sign() == 1"#
        ]
    );
}

/// Strings of format date-time, date, duration and byte are typed as upstream
/// types them: instants compare across offsets, durations and bytes have sizes.
#[test]
fn formatted_strings_in_rules() {
    let s = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.start < self.end && self.end - self.start == duration('1h')"},
            {"rule": "self.day.getDayOfMonth() == 1 && self.start.getHours() == 8"},
            {"rule": "self.timeout > duration('1m') && size(self.data) == 5"},
        ],
        "properties": {
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "timeout": {"type": "string", "format": "duration"},
            "data": {"type": "string", "format": "byte"},
        },
    }}});
    assert!(
        validate_rules(&s, "s").is_empty(),
        "{:?}",
        validate_rules(&s, "s")
    );
    let node = compile_schema(&s).expect("rules");
    // As strings, "10:00+02:00" sorts after "09:00Z"; as instants it is before.
    let obj = |start: &str| {
        json!({"spec": {
            "start": start, "end": "2024-01-01T09:00:00Z",
            "day": "2024-03-02", "timeout": "90s", "data": "aGVsbG8=",
        }})
    };
    let errors = |o: Value| -> Vec<String> {
        validate(&node, &o, None)
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert_eq!(
        errors(obj("2024-01-01T10:00:00+02:00")),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(obj("2024-01-01T10:00:00Z")),
        [
            r#"spec: Invalid value: "object": failed rule: self.start < self.end && self.end - self.start == duration('1h')"#,
            r#"spec: Invalid value: "object": failed rule: self.day.getDayOfMonth() == 1 && self.start.getHours() == 8"#,
        ]
    );
}
