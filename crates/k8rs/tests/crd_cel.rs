//! CRD validation rules (`x-kubernetes-validations`, CEL) through a real `k8rs server`
//! and the installed kubectl: a rule that does not compile makes the CRD invalid
//! (422), a custom resource that breaks a rule is refused with upstream's message as
//! kubectl prints it, a transition rule (`self == oldSelf`) guards an update, and
//! rules call the Kubernetes CEL libraries (CIDR, IP, quantity) within upstream's
//! cost limits.

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

/// Applies a CRD of group example.com and waits until its resources are served.
fn install(s: &Server, crd: &str, plural: &str) {
    s.apply(crd);
    s.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        &format!("crd/{plural}.example.com"),
        "--timeout=30s",
    ]);
    wait_for(&format!("{plural} served"), Duration::from_secs(30), || {
        s.kubectl(&["get", plural]).status.success().then_some(())
    });
}

/// Applies `yaml`, which kubectl must refuse; returns what it printed on stderr.
fn refusal(s: &Server, yaml: &str) -> String {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(!out.status.success(), "accepted: {yaml}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Applies each `(name, spec, message)` as a `manifest(name, spec)` that kubectl must
/// refuse with `message`.
fn assert_refused(s: &Server, manifest: fn(&str, &str) -> String, cases: &[(&str, &str, &str)]) {
    for (name, spec, want) in cases {
        let err = refusal(s, &manifest(name, spec));
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn crd_validation_rules() {
    let s = Server::start();

    // A rule that does not compile: the CRD is refused (422 Invalid).
    let bad = CRD.replace(
        r#"rule: "self.minReplicas <= self.replicas""#,
        r#"rule: "self.minReplicas <= self.replicaz""#,
    );
    let err = refusal(&s, &bad);
    assert!(
        err.contains(r#"The CustomResourceDefinition "scalers.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"self.minReplicas <= self.replicaz""#),
        "{err}"
    );
    assert!(
        err.contains("compilation failed: ERROR: <input>:1:")
            && err.contains("undefined field 'replicaz'"),
        "{err}"
    );

    install(&s, CRD, "scalers");

    // A rule broken: upstream's default message at the rule's node.
    let err = refusal(&s, &scaler("bad", "{replicas: 1, minReplicas: 3}"));
    assert!(
        err.contains(r#"The Scaler "bad" is invalid: spec: Invalid value: "object": failed rule: self.minReplicas <= self.replicas"#),
        "{err}"
    );
    // messageExpression and fieldPath.
    let err = refusal(&s, &scaler("big", "{replicas: 11, minReplicas: 1}"));
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
    let err = refusal(
        &s,
        &scaler("good", "{replicas: 4, minReplicas: 1, class: silver}"),
    );
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

const NETWORK_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: networks.example.com}
spec:
  group: example.com
  names: {kind: Network, plural: networks}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "cidr(self.subnet).containsIP(self.gateway)"
              messageExpression: "'gateway ' + self.gateway + ' is outside ' + string(cidr(self.subnet).masked())"
            properties:
              subnet:
                type: string
                x-kubernetes-validations:
                - rule: "isCIDR(self) && cidr(self).prefixLength() >= 16"
                  message: must be a CIDR of /16 or longer
              gateway: {type: string}
              memory:
                type: string
                x-kubernetes-validations:
                - rule: "quantity(self).isLessThan(quantity('1Gi'))"
              ports:
                type: array
                maxItems: 1000
                items: {type: integer}
                x-kubernetes-validations:
                - rule: "self.all(x, self.all(y, x == y || x != y))"
"#;

fn network(name: &str, spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Network\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

/// The Kubernetes CEL libraries (CIDR, IP, quantity) in rules, through kubectl,
/// with upstream's messages; a rule whose estimated cost is too high is refused
/// with the CRD, and one past the per-rule limit at run time is cancelled.
#[test]
fn crd_rules_use_kubernetes_cel_libraries() {
    let s = Server::start();

    // A rule too costly for an unbounded list: the CRD is refused (422 Invalid).
    let costly = NETWORK_CRD.replace(
        "gateway: {type: string}",
        "gateway: {type: string}\n              tags: {type: array, items: {type: string}, x-kubernetes-validations: [{rule: 'self.all(x, self.exists(y, x != y))'}]}",
    );
    let err = refusal(&s, &costly);
    assert!(
        err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"),
        "{err}"
    );

    install(&s, NETWORK_CRD, "networks");

    s.apply(&network(
        "ok",
        "{subnet: 10.1.0.0/16, gateway: 10.1.0.1, memory: 512Mi}",
    ));
    let refused = [
        (
            "wide",
            "{subnet: 10.0.0.0/8, gateway: 10.0.0.1}",
            r#"The Network "wide" is invalid: spec.subnet: Invalid value: "string": must be a CIDR of /16 or longer"#,
        ),
        (
            "outside",
            "{subnet: 10.1.7.0/24, gateway: 10.2.0.1}",
            r#"The Network "outside" is invalid: spec: Invalid value: "object": gateway 10.2.0.1 is outside 10.1.7.0/24"#,
        ),
        (
            "big",
            "{subnet: 10.1.0.0/16, gateway: 10.1.0.1, memory: 2Gi}",
            r#"The Network "big" is invalid: spec.memory: Invalid value: "string": failed rule: quantity(self).isLessThan(quantity('1Gi'))"#,
        ),
        (
            "typo",
            "{subnet: 10.1.0.0/16, gateway: 10.1.0.1, memory: 200K}",
            r#"The Network "typo" is invalid: spec.memory: Invalid value: "string": unable to parse quantity's suffix evaluating rule: quantity(self).isLessThan(quantity('1Gi'))"#,
        ),
    ];
    assert_refused(&s, network, &refused);

    // Within the estimate for 1000 items, past the per-rule limit at run time:
    // cancelled, as upstream cancels it, instead of running 10⁶ iterations.
    let ports: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let spec = format!(
        "{{subnet: 10.1.0.0/16, gateway: 10.1.0.1, ports: [{}]}}",
        ports.join(", ")
    );
    let err = refusal(&s, &network("many", &spec));
    assert!(
        err.contains(r#"The Network "many" is invalid: spec.ports: Invalid value: "array": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.all(x, self.all(y, x == y || x != y))"#),
        "{err}"
    );

    assert_eq!(
        s.jsonpath(&["get", "networks"], "{.items[*].metadata.name}"),
        "ok"
    );
}

const QUEUE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: queues.example.com}
spec:
  group: example.com
  names: {kind: Queue, plural: queues}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.items.all(i, v, v.priority >= i)"
              message: priorities must not fall below their position
            - rule: "self.labels.transformMap(k, v, v.size()).all(k, n, n <= 8)"
              message: label values are at most 8 characters
            properties:
              items:
                type: array
                items:
                  type: object
                  properties:
                    priority: {type: integer}
              labels:
                type: object
                additionalProperties: {type: string}
"#;

fn queue(name: &str, spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Queue\nmetadata: {{name: {name}}}\nspec: {spec}\n")
}

/// Two-variable comprehensions (index and item, key and value) in rules, as
/// upstream's environment has them since 1.32; a bad iteration variable makes
/// the CRD invalid.
#[test]
fn crd_rules_use_two_variable_comprehensions() {
    let s = Server::start();

    let bad = QUEUE_CRD.replace("all(i, v, v.priority", "all(i, i, i.priority");
    let err = refusal(&s, &bad);
    assert!(
        err.contains(r#"spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:"self.items.all(i, i, i.priority >= i)""#)
            && err.contains("compilation failed: ERROR: <input>:1:19: duplicate variable name: i"),
        "{err}"
    );

    install(&s, QUEUE_CRD, "queues");
    s.apply(&queue(
        "ok",
        "{items: [{priority: 0}, {priority: 3}], labels: {team: web}}",
    ));
    let refused = [
        (
            "low",
            "{items: [{priority: 0}, {priority: 0}], labels: {}}",
            r#"The Queue "low" is invalid: spec: Invalid value: "object": priorities must not fall below their position"#,
        ),
        (
            "long",
            "{items: [], labels: {team: platform-infra}}",
            r#"The Queue "long" is invalid: spec: Invalid value: "object": label values are at most 8 characters"#,
        ),
    ];
    assert_refused(&s, queue, &refused);
    assert_eq!(
        s.jsonpath(&["get", "queues"], "{.items[*].metadata.name}"),
        "ok"
    );
}
