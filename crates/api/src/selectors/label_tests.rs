//! Label selector tests: the cases follow upstream's labels/selector_test.go
//! behaviour (parse results, canonical strings, matching, error texts).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

fn labels(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn parses_to_canonical_strings() {
    // (input, String() of the parsed selector)
    let cases = [
        ("", ""),
        ("x=a", "x=a"),
        ("x==a", "x==a"),
        ("x!=a", "x!=a"),
        ("x=a,y!=b", "x=a,y!=b"),
        ("y!=b,x=a", "x=a,y!=b"),
        (" x = a , y ", "x=a,y"),
        ("!x", "!x"),
        ("x in (b,a)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        (
            "x in (foo,,baz),y,z notin ()",
            "x in (,baz,foo),y,z notin ()",
        ),
        ("x in (a,)", "x in (,a)"),
        ("x in (,a)", "x in (,a)"),
        ("x=", "x="),
        ("x=,z= ", "x=,z="),
        ("x>1", "x>1"),
        ("x<1", "x<1"),
        ("in in (in)", "in in (in)"),
        ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ];
    for (input, want) in cases {
        let s = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(s.to_string(), want, "{input}");
    }
}

#[test]
fn parse_errors_carry_upstream_messages() {
    let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let value_err = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let cases: Vec<(&str, String)> = vec![
        ("x=a b", "found 'b', expected: ',' or 'end of string'".into()),
        ("x=a,", "found '', expected: identifier after ','".into()),
        (",x", "found ',', expected: !, identifier, or 'end of string'".into()),
        (
            "x in a",
            "unable to parse requirement: found 'a' expected: '('".into(),
        ),
        (
            "x in (a b)",
            "unable to parse requirement: found 'b', expected: ',' or ')'".into(),
        ),
        (
            "x in (a",
            "unable to parse requirement: found '', expected: ',' or ')'".into(),
        ),
        (
            "x in (=)",
            "unable to parse requirement: found '=', expected: ',', ')' or identifier".into(),
        ),
        (
            "x (a)",
            "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
                .into(),
        ),
        (
            "x=(",
            "unable to parse requirement: found '(', expected: identifier".into(),
        ),
        ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
        (
            "a@b=c",
            format!(r#"unable to parse requirement: <nil>: Invalid value: "a@b": {name_part}"#),
        ),
        (
            "x=-a",
            format!(r#"unable to parse requirement: values[0][x]: Invalid value: "-a": {value_err}"#),
        ),
        (
            "x>a",
            r#"unable to parse requirement: values[0]: Invalid value: "a": for 'Gt', 'Lt' operators, the value must be an integer"#.into(),
        ),
    ];
    for (input, want) in cases {
        let err = LabelSelector::parse(input).unwrap_err();
        assert!(matches!(err, SelectorError::Label(_)));
        assert_eq!(err.to_string(), want, "{input}");
    }
}

#[test]
fn matches_labels() {
    let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
    // (selector, matches l)
    let cases = [
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("app in (web,db)", true),
        ("app notin (web)", false),
        ("missing notin (web)", true),
        ("missing in (web)", false),
        ("app", true),
        ("!app", false),
        ("!missing", true),
        ("n>4", true),
        ("n>5", false),
        ("n<6", true),
        ("app>1", false),
        ("missing>1", false),
        ("app=web,tier=back", false),
        ("app=web,tier=front", true),
    ];
    for (sel, want) in cases {
        let s = LabelSelector::parse(sel).unwrap();
        assert_eq!(s.matches(Some(&l)), want, "{sel}");
    }
    assert!(LabelSelector::parse("").unwrap().matches(None));
    assert!(!LabelSelector::parse("app").unwrap().matches(None));
    let typed: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
    assert!(LabelSelector::parse("app=web").unwrap().matches_map(&typed));
}

#[test]
fn converts_metav1_label_selectors() {
    let s = LabelSelector::from_label_selector(&json!({
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "c", "operator": "In", "values": ["y", "x"]},
            {"key": "d", "operator": "DoesNotExist"},
        ]
    }))
    .unwrap();
    assert_eq!(s.to_string(), "a=1,b=2,c in (x,y),!d");
    assert!(s.matches(Some(&labels(json!({"a": "1", "b": "2", "c": "x"})))));
    assert!(!s.matches(Some(&labels(
        json!({"a": "1", "b": "2", "c": "x", "d": ""})
    ))));

    let everything = LabelSelector::from_label_selector(&json!({})).unwrap();
    assert!(everything.is_empty() && everything.matches(None));
    let nothing = LabelSelector::from_label_selector(&Value::Null).unwrap();
    assert!(!nothing.is_empty() && !nothing.matches(Some(&labels(json!({})))));
    assert_eq!(nothing.to_string(), "");

    let err = |v: Value| {
        LabelSelector::from_label_selector(&v)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Seriously"}]})),
        r#""Seriously" is not a valid label selector operator"#
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})),
        r#"values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist"#
    );
    assert!(
        err(json!({"matchLabels": {"a b": "c"}})).starts_with(r#"key: Invalid value: "a b": "#)
    );
}

#[test]
fn exact_match_and_formatting() {
    let s = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5").unwrap();
    assert_eq!(s.requires_exact_match("a"), Some("1"));
    assert_eq!(s.requires_exact_match("b"), Some("2"));
    assert_eq!(s.requires_exact_match("c"), None);
    assert_eq!(s.requires_exact_match("d"), None);
    assert_eq!(s.requires_exact_match("e"), None);

    assert_eq!(format_labels(None), "<none>");
    assert_eq!(
        format_labels(Some(&labels(json!({"b": "2", "a": "1"})))),
        "a=1,b=2"
    );
    assert_eq!(format_label_selector(&Value::Null), "<none>");
    assert_eq!(format_label_selector(&json!({})), "<none>");
    assert_eq!(
        format_label_selector(&json!({"matchLabels": {"app": "web"}})),
        "app=web"
    );
    assert_eq!(
        format_label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})),
        "<error>"
    );
    let set = LabelSelector::from_set([("b", "2"), ("a", "1")]);
    assert_eq!(set.to_string(), "a=1,b=2");
}
