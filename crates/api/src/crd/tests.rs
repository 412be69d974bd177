//! Structural checks, pruning, defaulting and validation messages of CRD schemas.

use serde_json::{Value, json};

use super::*;
use crate::strategy::Strategy;

const ROOT: &str = "spec.versions[0].schema.openAPIV3Schema";

fn msgs(errs: &[crate::FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.to_string()).collect()
}

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["mode"], "properties": {
            "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "name": {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "^[a-z]+$"},
            "when": {"type": "string", "format": "date-time"},
            "port": {"x-kubernetes-int-or-string": true},
            "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "opt": {"type": "string", "nullable": true},
            "inner": {"type": "object", "default": {}, "properties": {
                "level": {"type": "string", "default": "info"}}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true},
            "rules": {"type": "array", "items": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.x > 0"}],
                "properties": {"x": {"type": "integer", "format": "int32"}}}},
        }},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    }})
}

fn cr(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
}

#[test]
fn structural_messages() {
    let s = json!({"properties": {
        "a": {"type": "array"},
        "b": {"type": "array", "items": {}},
        "c": {"description": "no type"},
        "d": {"x-kubernetes-preserve-unknown-fields": true},
        "e": {"x-kubernetes-int-or-string": true},
        "f": {"type": "object", "properties": {"x": {"type": "string"}},
            "additionalProperties": {"type": "string"}},
    }});
    let p = format!("{ROOT}.properties");
    assert_eq!(
        msgs(&validate_structural(&s, ROOT)),
        [
            format!("{p}[a].items: Required value: must be specified"),
            format!(
                "{p}[b].items.type: Required value: must not be empty for specified array items"
            ),
            format!("{p}[c].type: Required value: must not be empty for specified object fields"),
            format!(
                "{p}[f].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
            ),
            format!("{ROOT}.type: Required value: must not be empty at the root"),
        ]
    );
    assert!(validate_structural(&schema(), ROOT).is_empty());
}

#[test]
fn structural_root_metadata_and_junctors() {
    let s = json!({"type": "string"});
    assert_eq!(
        msgs(&validate_structural(&s, ROOT)),
        [format!(
            r#"{ROOT}.type: Invalid value: "string": must be object at the root"#
        )]
    );
    let s = json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"labels": {"type": "object"}}}}});
    assert_eq!(
        msgs(&validate_structural(&s, ROOT)),
        [format!(
            "{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        )]
    );
    let ok = json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"name": {"type": "string", "maxLength": 10}}}}});
    assert!(validate_structural(&ok, ROOT).is_empty());
    let s = json!({"type": "object", "properties": {"a": {"type": "string",
        "anyOf": [{"type": "string"}, {"properties": {"z": {"minLength": 1}}}]}}});
    let got = msgs(&validate_structural(&s, ROOT));
    assert!(
        got.contains(&format!(
            "{ROOT}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"
        )),
        "{got:?}"
    );
    let int_or_string = json!({"type": "object", "properties": {"p": {
        "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}});
    assert!(validate_structural(&int_or_string, ROOT).is_empty());
}

#[test]
fn pruning_reports_dropped_paths() {
    let mut obj = cr(
        json!({"mode": "a", "bogus": 1, "extra": {"anything": {"x": 1}},
        "labels": {"k": "v"}, "rules": [{"x": 1, "y": 2}],
        "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}}),
    );
    obj["top"] = json!(true);
    let dropped = prune(&schema(), &mut obj);
    assert_eq!(dropped, ["spec.bogus", "spec.rules[0].y", "top"]);
    assert!(obj.get("top").is_none() && obj["spec"].get("bogus").is_none());
    assert_eq!(obj["spec"]["extra"]["anything"]["x"], 1);
    assert_eq!(obj["spec"]["template"]["metadata"]["name"], "p");
    assert_eq!(obj["metadata"]["name"], "w");
}

#[test]
fn defaulting_fills_missing_and_nulls() {
    let mut obj = cr(json!({"mode": "a", "replicas": null, "opt": null}));
    apply_defaults(&schema(), &mut obj);
    assert_eq!(obj["spec"]["replicas"], 1);
    assert_eq!(obj["spec"]["inner"], json!({"level": "info"}));
    assert_eq!(obj["spec"]["opt"], Value::Null);
    let mut obj = cr(json!({"mode": "a", "replicas": 3}));
    apply_defaults(&schema(), &mut obj);
    assert_eq!(obj["spec"]["replicas"], 3);
    let mut no_spec = json!({"metadata": {"name": "x"}});
    apply_defaults(&schema(), &mut no_spec);
    assert!(no_spec.get("spec").is_none());
}

#[test]
fn validation_messages_are_upstreams() {
    let bad = cr(
        json!({"replicas": "x", "mode": "bogus", "name": "AB", "when": "soon",
        "port": true, "tags": [], "labels": {"k": 1}}),
    );
    let got = msgs(&validate_object(&schema(), &bad));
    for want in [
        r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
        r#"spec.mode: Unsupported value: "bogus": supported values: "a", "b""#,
        r#"spec.name: Invalid value: "AB": spec.name in body should be at least 3 chars long"#,
        r#"spec.name: Invalid value: "AB": spec.name in body should match '^[a-z]+$'"#,
        r#"spec.when: Invalid value: "soon": spec.when in body must be of type date-time: "soon""#,
        r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
        "spec.tags: Invalid value: []: spec.tags in body should have at least 1 items",
        r#"spec.labels.k: Invalid value: "integer": spec.labels.k in body must be of type string: "integer""#,
    ] {
        assert!(got.contains(&want.to_string()), "missing {want}\n{got:#?}");
    }
    let mut got = msgs(&validate_object(
        &schema(),
        &cr(json!({"replicas": -1, "name": "abcdefg",
        "tags": ["a", "b", "c"], "rules": [{"x": 3000000000u64}]})),
    ));
    got.sort();
    assert_eq!(
        got,
        [
            "spec.mode: Required value",
            "spec.name: Too long: may not be more than 5 bytes",
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
            r#"spec.rules[0].x: Invalid value: 3000000000: spec.rules[0].x in body must be of type int32: "3000000000""#,
            "spec.tags: Too many: 3: must have at most 2 items",
        ]
    );
    let ok = cr(
        json!({"mode": "b", "replicas": 10, "port": "http", "opt": null,
        "when": "2024-01-02T03:04:05Z", "template": {"apiVersion": "v1", "kind": "Pod"}}),
    );
    assert!(validate_object(&schema(), &ok).is_empty());
    let embedded = cr(json!({"mode": "a", "template": {"metadata": {}}}));
    assert_eq!(
        msgs(&validate_object(&schema(), &embedded)),
        [
            "spec.template.apiVersion: Required value: must not be empty",
            "spec.template.kind: Required value: must not be empty",
        ]
    );
}

fn crd(schema: Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema}}]}})
}

#[test]
fn crd_strategy_defaults_and_validates() {
    let st = CrdStrategy;
    let mut good = crd(schema());
    st.default(&mut good);
    assert_eq!(good["spec"]["names"]["singular"], "widget");
    assert_eq!(good["spec"]["names"]["listKind"], "WidgetList");
    assert!(st.validate(&good).is_empty(), "{:?}", st.validate(&good));

    let mut bad = crd(json!({"properties": {"spec": {"type": "object"}}}));
    bad["metadata"]["name"] = json!("widget.example.com");
    bad["spec"]["scope"] = json!("Global");
    bad["spec"]["versions"][0]["storage"] = json!(false);
    st.default(&mut bad);
    let got = msgs(&st.validate(&bad));
    for want in [
        r#"metadata.name: Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group"#,
        r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
        "spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root",
    ] {
        assert!(got.contains(&want.to_string()), "missing {want}\n{got:#?}");
    }
    assert!(
        got.iter()
            .any(|m| m.starts_with("spec.versions: Invalid value: ")
                && m.ends_with("must have exactly one version marked as storage version"))
    );

    let mut bad_default = crd(
        json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"n": {"type": "integer", "default": "one"}}}}}),
    );
    st.default(&mut bad_default);
    let got = msgs(&st.validate(&bad_default));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(&format!(
            "{ROOT}.properties[spec].properties[n].default: Invalid value: \"string\""
        )),
        "{got:?}"
    );
}

#[test]
fn crd_updates_ratchet_old_errors_and_keep_names_immutable() {
    let st = CrdStrategy;
    let mut old = crd(json!({"properties": {"spec": {"type": "object"}}}));
    st.default(&mut old);
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!(["x"]);
    assert!(st.validate_update(&new, &old).is_empty());
    new["spec"]["group"] = json!("other.com");
    let got = msgs(&st.validate_update(&new, &old));
    assert!(
        got.contains(&r#"spec.group: Invalid value: "other.com": field is immutable"#.to_string()),
        "{got:?}"
    );
}

#[test]
fn custom_resource_strategy_prunes_defaults_validates() {
    let version = json!({"name": "v1", "schema": {"openAPIV3Schema": schema()},
        "subresources": {"status": {}}});
    let st = CustomResourceStrategy::new(&version, true);
    let mut obj = cr(json!({"mode": "a", "unknown": 1}));
    assert_eq!(st.unknown_fields(&obj), ["spec.unknown"]);
    st.default(&mut obj);
    assert_eq!(
        obj["spec"],
        json!({"mode": "a", "replicas": 1, "inner": {"level": "info"}})
    );
    assert!(st.validate(&obj).is_empty());
    assert!(st.resets_status_on_create() && st.tracks_generation());
    let mut status = cr(json!({"mode": "a"}));
    status["status"] = json!({"ready": "yes"});
    let got = msgs(&st.validate_status_update(&status, &obj));
    assert_eq!(
        got,
        [
            r#"status.ready: Invalid value: "string": status.ready in body must be of type boolean: "string""#,
            // upstream's hasBlockingErr: CEL rules are not run on mistyped objects
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
        ]
    );
    let mut bad_rule = cr(json!({"mode": "a", "rules": [{"x": 0}]}));
    st.default(&mut bad_rule);
    assert_eq!(
        msgs(&st.validate_update(&bad_rule, &obj)),
        [r#"spec.rules[0]: Invalid value: "object": failed rule: self.x > 0"#]
    );
}
