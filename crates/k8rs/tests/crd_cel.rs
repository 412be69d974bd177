//! CRD validation rules (`x-kubernetes-validations`, CEL) through a real `k8rs server`
//! and the installed kubectl: a rule that does not compile makes the CRD invalid
//! (422), a custom resource that breaks a rule is refused with upstream's message as
//! kubectl prints it, and a transition rule (`self == oldSelf`) guards an update.

mod support;

use std::time::Duration;

use support::{Server, wait_for};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scalers.example.com}
spec:
  group: example.com
  names: {kind: Scaler, plural: scalers}
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
            x-kubernetes-validations:
            - rule: "self.minReplicas <= self.replicas"
            - rule: "self.replicas <= 10"
              messageExpression: "'replicas ' + string(self.replicas) + ' is above 10'"
              fieldPath: .replicas
            properties:
              replicas: {type: integer}
              minReplicas: {type: integer}
              class:
                type: string
                x-kubernetes-validations:
                - rule: "self == oldSelf"
                  message: Value is immutable
          status:
            type: object
            properties:
              ready: {type: integer}
            x-kubernetes-validations:
            - rule: "self.ready >= 0"
              reason: FieldValueForbidden
"#;

fn scaler(name: &str, spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Scaler\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn crd_validation_rules() {
    let s = Server::start();

    // A rule that does not compile: the CRD is refused (422 Invalid).
    let bad = CRD.replace(
        r#"rule: "self.minReplicas <= self.replicas""#,
        r#"rule: "self.minReplicas <= self.replicaz""#,
    );
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &bad);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"The CustomResourceDefinition "scalers.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"self.minReplicas <= self.replicaz""#),
        "{err}"
    );
    assert!(
        err.contains("compilation failed: ERROR: <input>:1:")
            && err.contains("undefined field 'replicaz'"),
        "{err}"
    );

    s.apply(CRD);
    s.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/scalers.example.com",
        "--timeout=30s",
    ]);
    wait_for("scalers served", Duration::from_secs(30), || {
        s.kubectl(&["get", "scalers"])
            .status
            .success()
            .then_some(())
    });

    // A rule broken: upstream's default message at the rule's node.
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        &scaler("bad", "{replicas: 1, minReplicas: 3}"),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(r#"The Scaler "bad" is invalid: spec: Invalid value: "object": failed rule: self.minReplicas <= self.replicas"#),
        "{err}"
    );
    // messageExpression and fieldPath.
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        &scaler("big", "{replicas: 11, minReplicas: 1}"),
    );
    let err = stderr(&out);
    assert!(
        err.contains(r#"The Scaler "big" is invalid: spec.replicas: Invalid value: "object": replicas 11 is above 10"#),
        "{err}"
    );

    // A valid one is accepted; a transition rule refuses changing an immutable field.
    s.apply(&scaler(
        "good",
        "{replicas: 3, minReplicas: 1, class: gold}",
    ));
    s.apply(&scaler(
        "good",
        "{replicas: 4, minReplicas: 1, class: gold}",
    ));
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        &scaler("good", "{replicas: 4, minReplicas: 1, class: silver}"),
    );
    let err = stderr(&out);
    assert!(
        err.contains(r#"The Scaler "good" is invalid: spec.class: Invalid value: "string": Value is immutable"#),
        "{err}"
    );
    assert_eq!(
        s.jsonpath(&["get", "scaler", "good"], "{.spec.replicas} {.spec.class}"),
        "4 gold"
    );

    // Rules under status run on the status subresource, with their reason.
    let err = s.kubectl_err(&[
        "patch",
        "scaler",
        "good",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":-1}}"#,
    ]);
    assert!(
        err.contains(
            r#"The Scaler "good" is invalid: status: Forbidden: failed rule: self.ready >= 0"#
        ),
        "{err}"
    );
    s.kubectl_ok(&[
        "patch",
        "scaler",
        "good",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":2}}"#,
    ]);
}
