//! The two-variable comprehensions, with the examples of cel-go's
//! `ext/comprehensions.go` documentation as the expected behaviour.

use cel::{ExecutionError, Value};
use serde_json::{Value as Json, json};

use super::super::super::library::cost::{PER_CALL_LIMIT, instrument, metered};
use super::super::super::{compile_schema, validate, validate_rules};
use super::super::{eval, eval_err, yes};
use super::lower;

#[test]
fn quantifiers_on_lists_and_maps() {
    yes("[1, 2, 3].all(i, j, i < j)");
    yes("!{'hello': 'world', 'taco': 'taco'}.all(k, v, k != v)");
    yes("{'h': ['hello', 'hi'], 'j': ['joke', 'jog']}.all(k, vals, vals.all(v, v.startsWith(k)))");
    yes(
        "{'greeting': 'hello', 'farewell': 'goodbye'}.exists(k, v, k.startsWith('good') || v.endsWith('bye'))",
    );
    yes("![1, 2, 4, 8, 16].exists(i, v, v == 1024 && i == 10)");
    yes("![1, 2, 1, 3, 1, 4].existsOne(i, v, i == 1 || v == 1)");
    yes("[1, 1, 2, 2, 3, 3].existsOne(i, v, i == 2 && v == 2)");
    yes("{'i': 0, 'j': 1, 'k': 2}.existsOne(i, v, i == 'l' || v == 1)");
    yes("[1, 1, 2, 2, 3, 3].exists_one(i, v, i == 2 && v == 2)");
    yes("[].all(i, v, false) && ![].exists(i, v, true) && !{}.existsOne(k, v, true)");
}

#[test]
fn the_one_variable_forms_still_work() {
    yes("[1, 2].all(x, x > 0) && [1, 2].exists(x, x == 2) && [1, 2].exists_one(x, x == 2)");
    yes("{'a': 1}.all(k, k == 'a') && [1, 2].map(x, x * 2) == [2, 4]");
    yes("[1, 2, 3].map(x, x > 1, x * 10) == [20, 30] && [1, 2].filter(x, x > 1) == [2]");
}

#[test]
fn transforms() {
    yes("[1, 2, 3].transformList(i, v, (i * v) + v) == [1, 4, 9]");
    yes("[1, 2, 3].transformList(i, v, i % 2 == 0, (i * v) + v) == [1, 9]");
    yes("{'greeting': 'hello'}.transformList(k, v, k + '=' + v) == ['greeting=hello']");
    yes("[1, 2, 3].transformMap(i, v, (i * v) + v) == {0: 1, 1: 4, 2: 9}");
    yes("[1, 2, 3].transformMap(i, v, i % 2 == 0, (i * v) + v) == {0: 1, 2: 9}");
    yes("{'greeting': 'hello'}.transformMap(k, v, v + '!') == {'greeting': 'hello!'}");
    yes("{'greeting': 'hello'}.transformMapEntry(k, v, {v: k}) == {'hello': 'greeting'}");
    yes("[1, 2, 3].transformMapEntry(i, v, {v: i}) == {1: 0, 2: 1, 3: 2}");
    yes("[1, 2, 3].transformMapEntry(i, v, v > 1, {v: i, -v: i}) == {2: 1, -2: 1, 3: 2, -3: 2}");
    yes("[].transformList(i, v, v) == [] && {}.transformMap(k, v, v) == {}");
}

#[test]
fn transform_map_entry_errors() {
    assert_eq!(
        eval_err("{'greeting': 'aloha', 'farewell': 'aloha'}.transformMapEntry(k, v, {v: k})"),
        "insert failed: key aloha already exists"
    );
    assert_eq!(
        eval_err("[3, 3].transformMapEntry(i, v, {v: i})"),
        "insert failed: key 3 already exists"
    );
    // The entry must be a map: upstream's checker refuses what it knows is not
    // one, its runtime finds no overload for the rest.
    assert!(matches!(
        eval("[1].transformMapEntry(i, v, dyn(v))"),
        Err(ExecutionError::NoSuchOverload(_))
    ));
}

#[test]
fn names_shadow_as_scopes_do() {
    // An inner comprehension's own names win inside it.
    yes("[5, 6].all(i, v, [10].all(i, i == 10) && v == i + 5)");
    yes("[5, 6].all(i, v, [7].all(x, v, v == 7) && v >= 5)");
    yes("[[1, 2], [3]].all(i, l, l.all(j, v, v > i && j < 2))");
    yes("{'a': [1]}.all(k, l, l.exists(i, v, i == 0 && v == 1 && k == 'a'))");
    yes("cel.bind(v, 5, [1].all(i, v, v == 1) && v == 5)");
    yes("[1].all(i, v, cel.bind(v, 7, v == 7) && v == 1)");
    // has() on the value, and the names outside stay untouched.
    yes("[{'a': 1}].all(i, v, has(v.a) && !has(v.b))");
}

#[test]
fn evaluation_errors_are_absorbed_as_in_all_and_exists() {
    // `error && false` is false, `error || true` is true.
    yes("![1, 'a', 0].all(i, v, v > 0 && i >= 0)");
    yes("[1, 'a', 0].exists(i, v, v == 0)");
    assert!(eval("[1, 'a'].all(i, v, v > 0)").is_err());
    assert!(eval("5.all(i, v, true)").is_err());
}

fn compile_error(src: &str) -> String {
    super::super::super::functions::ENV
        .compile(src)
        .err()
        .unwrap_or_else(|| panic!("{src} parsed"))
        .to_string()
}

#[test]
fn bad_names_fail_the_parse_as_upstream() {
    let e = compile_error("[1].all(i + 1, v, true)");
    // Located at the operator, as cel-go locates it.
    assert!(e.contains("1:11: argument must be a simple name"), "{e}");
    let e = compile_error("[1].transformList(i, v.x, v)");
    assert!(e.contains("argument must be a simple name"), "{e}");
    let e = compile_error("[1].exists(i, i, true)");
    assert!(e.contains("1:15: duplicate variable name: i"), "{e}");
    let e = compile_error("[].transformList(__result__, i, i)");
    assert!(
        e.contains("1:18: iteration variable overwrites accumulator variable"),
        "{e}"
    );
    let e = compile_error("[].exists(j, __result__, j < 1)");
    assert!(e.contains("overwrites accumulator variable"), "{e}");
}

fn spec_schema(rule: &str) -> Json {
    json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [{"rule": rule}],
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "priority": {"type": "integer"}, "name": {"type": "string"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    }}})
}

fn rule_errors(rule: &str) -> Vec<String> {
    validate_rules(&spec_schema(rule), "s")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn rules_are_checked_against_the_schema() {
    for ok in [
        "self.items.all(i, v, v.priority >= i)",
        "self.labels.all(k, v, k.size() > 0 && v.startsWith('x'))",
        "self.labels.transformMap(k, v, v.size()).all(k, n, n < 10)",
        "self.items.transformList(i, v, v.name).exists(i, n, n == 'a')",
        "self.items.transformMapEntry(i, v, {v.name: i}).size() > 0",
        "self.labels.existsOne(k, v, v == 'a')",
    ] {
        assert!(rule_errors(ok).is_empty(), "{ok}: {:?}", rule_errors(ok));
    }
    let errs = rule_errors("self.items.all(i, v, v.nosuch > i)");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("undefined field 'nosuch'"), "{errs:?}");
    let errs = rule_errors("self.items.all(i, i, true)");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("x-kubernetes-validations[0].rule: Invalid value")
            && errs[0]
                .contains("compilation failed: ERROR: <input>:1:19: duplicate variable name: i"),
        "{errs:?}"
    );
    let errs = rule_errors("self.items.transformList(i, v, v.name)");
    assert!(
        errs[0].contains("cel expression must evaluate to a bool"),
        "{errs:?}"
    );
}

#[test]
fn rules_run_against_objects() {
    let check = |rule: &str, spec: Json| -> Vec<String> {
        let node = compile_schema(&spec_schema(rule)).expect("rules");
        validate(&node, &json!({ "spec": spec }), None)
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    let rule = "self.items.all(i, v, v.priority >= i)";
    let good = json!({"items": [{"priority": 0}, {"priority": 5}]});
    assert!(check(rule, good).is_empty());
    let bad = json!({"items": [{"priority": 0}, {"priority": 0}]});
    assert_eq!(
        check(rule, bad),
        [format!(
            r#"spec: Invalid value: "object": failed rule: {rule}"#
        )]
    );
    let rule = "self.labels.transformMapEntry(k, v, {v: k}).size() >= 0";
    let dup = json!({"labels": {"a": "x", "b": "x"}});
    assert_eq!(
        check(rule, dup),
        [format!(
            r#"spec: Invalid value: "object": insert failed: key x already exists evaluating rule: {rule}"#
        )]
    );
}

fn run(src: &str) -> (Result<Value, ExecutionError>, u64) {
    let env = super::super::super::functions::ENV.clone();
    let program = env.compile(src).expect("compiles");
    let expr = lower(instrument(program.expression()));
    let mut ctx = cel::Context::with_env(env);
    ctx.add_variable_from_value("self", (0..1000).collect::<Vec<i64>>());
    let (out, spent) = metered(PER_CALL_LIMIT, || ctx.resolve(&expr));
    (out, spent.cost)
}

#[test]
fn costs_are_like_the_one_variable_forms() {
    let (out, one) = run("self.all(x, x >= 0)");
    assert_eq!(out, Ok(Value::Bool(true)));
    let (out, two) = run("self.all(i, x, x >= 0)");
    assert_eq!(out, Ok(Value::Bool(true)));
    assert!(two >= one && two < 2 * one, "{one} {two}");
    let (out, map) = run("self.transformMap(i, v, v * 2).size() == 1000");
    assert_eq!(out, Ok(Value::Bool(true)));
    assert!((1000..20_000).contains(&map), "{map}");
    let (out, _) = run("self.all(i, x, self.all(j, y, self.all(k, z, x + y + z >= 0)))");
    assert!(out.is_err());
}

#[test]
fn building_a_map_is_linear() {
    let env = super::super::super::functions::ENV.clone();
    let src = "self.transformMap(i, v, v * 2).size() == 100000";
    let expr = lower(instrument(env.compile(src).expect("compiles").expression()));
    let mut ctx = cel::Context::with_env(env);
    ctx.add_variable_from_value("self", (0..100_000).collect::<Vec<i64>>());
    let started = std::time::Instant::now();
    let (out, spent) = metered(PER_CALL_LIMIT, || ctx.resolve(&expr));
    assert_eq!(out, Ok(Value::Bool(true)));
    assert!(!spent.exhausted);
    // A copy of the map per insert would take minutes.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn nested_loops_over_unbounded_lists_exceed_the_estimate() {
    let errs =
        rule_errors("self.items.all(i, v, self.items.exists(j, w, w.priority > v.priority))");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("estimated rule cost exceeds budget"),
        "{errs:?}"
    );
}
