//! A CRD's openAPIV3Schema applied to its custom resources, through the real kubectl:
//! defaulting, pruning, upstream's validation messages, the status subresource split,
//! generation tracking, non-structural CRDs refused, and the CEL rule run beside them.

use std::time::{Duration, Instant};

use testkit::TestServer;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer, minimum: 0, default: 1}
              mode: {type: string, enum: [fast, slow]}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
            x-kubernetes-validations:
            - rule: "self.replicas >= 0"
          status:
            type: object
            properties:
              ready: {type: boolean}
"#;

fn widget(name: &str, spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn apply(s: &TestServer, extra: &[&str], doc: &str) -> std::process::Output {
    let mut args = vec!["apply", "-f", "-"];
    args.extend_from_slice(extra);
    s.stdin(&args, doc)
}

fn jp(s: &TestServer, name: &str, path: &str) -> String {
    s.ok(&["get", "widget", name, "-o", &format!("jsonpath={path}")])
}

#[test]
fn crd_schema_defaults_prunes_and_validates() {
    let s = TestServer::start();
    let out = apply(&s, &[], CRD);
    assert!(out.status.success(), "{}", stderr(&out));
    s.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.kubectl(&["get", "widgets"]).status.success() {
        assert!(Instant::now() < deadline, "widgets never served");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Defaulting, pruning of unknown fields, preserved maps kept.
    let doc = widget("w1", "{mode: fast, bogus: 1, extra: {any: {thing: 1}}}");
    let out = apply(&s, &["--validate=false"], &doc);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(jp(&s, "w1", "{.spec.replicas}"), "1");
    assert_eq!(jp(&s, "w1", "{.spec.bogus}"), "");
    assert_eq!(jp(&s, "w1", "{.spec.extra.any.thing}"), "1");
    assert_eq!(jp(&s, "w1", "{.metadata.generation}"), "1");

    // Strict field validation names the unknown field.
    let out = apply(
        &s,
        &["--validate=strict"],
        &widget("w2", "{mode: fast, bogus: 1}"),
    );
    assert!(
        !out.status.success(),
        "strict apply of an unknown field succeeded"
    );
    let err = stderr(&out);
    assert!(err.contains("bogus"), "{err}");

    // Validation messages.
    let out = apply(
        &s,
        &["--validate=false"],
        &widget("w3", r#"{replicas: "x"}"#),
    );
    let err = stderr(&out);
    assert!(
        err.contains(r#"The Widget "w3" is invalid: 
* spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"
* <nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#),
        "{err}"
    );
    let out = apply(&s, &["--validate=false"], &widget("w4", "{mode: bogus}"));
    let err = stderr(&out);
    assert!(
        err.contains(r#"spec.mode: Unsupported value: "bogus": supported values: "fast", "slow""#),
        "{err}"
    );
    let out = apply(&s, &["--validate=false"], &widget("w5", "{replicas: -1}"));
    let err = stderr(&out);
    assert!(
        err.contains("spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
        "{err}"
    );
    // The CRD's rule (`self.replicas >= 0`) runs too: the value's type is right.
    assert!(
        err.contains(r#"spec: Invalid value: "object": failed rule: self.replicas >= 0"#),
        "{err}"
    );

    // Status subresource: the main resource keeps status, /status keeps the rest;
    // generation follows spec changes only.
    s.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    assert_eq!(jp(&s, "w1", "{.status.ready}"), "");
    s.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":true},"spec":{"replicas":7}}"#,
    ]);
    assert_eq!(
        jp(
            &s,
            "w1",
            "{.status.ready} {.spec.replicas} {.metadata.generation}"
        ),
        "true 1 1"
    );
    s.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);
    assert_eq!(
        jp(
            &s,
            "w1",
            "{.status.ready} {.spec.replicas} {.metadata.generation}"
        ),
        "true 3 2"
    );
    let out = s.kubectl(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":"yes"}}"#,
    ]);
    assert!(
        stderr(&out).contains("status.ready in body must be of type boolean"),
        "{}",
        stderr(&out)
    );

    // A non-structural CRD is refused with upstream's message.
    let bad = CRD
        .replace("widgets.example.com", "gadgets.example.com")
        .replace(
            "{kind: Widget, plural: widgets}",
            "{kind: Gadget, plural: gadgets}",
        )
        .replace(
            "        type: object\n        properties:\n          spec:",
            "        properties:\n          spec:",
        );
    let out = apply(&s, &[], &bad);
    let err = stderr(&out);
    assert!(
        err.contains(r#"The CustomResourceDefinition "gadgets.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root"#),
        "{err}"
    );
}
