//! Upstream's defaulting, status reset and validation messages, seen through kubectl.

use testkit::TestServer;

fn jp(s: &TestServer, kind: &str, name: &str, path: &str) -> String {
    s.ok(&["get", kind, name, "-o", &format!("jsonpath={path}")])
}

#[test]
fn workloads_and_pods_get_upstream_defaults() {
    let s = TestServer::start();
    s.ok(&["create", "deployment", "web", "--image=nginx:1.25"]);
    assert_eq!(
        jp(
            &s,
            "deploy",
            "web",
            "{.metadata.generation} {.spec.strategy.rollingUpdate.maxSurge} {.spec.revisionHistoryLimit} {.spec.progressDeadlineSeconds}"
        ),
        "1 25% 10 600"
    );
    assert_eq!(
        jp(
            &s,
            "deploy",
            "web",
            "{.spec.template.spec.restartPolicy} {.spec.template.spec.containers[0].imagePullPolicy}"
        ),
        "Always IfNotPresent"
    );
    s.ok(&["scale", "deploy", "web", "--replicas=3"]);
    assert_eq!(jp(&s, "deploy", "web", "{.metadata.generation}"), "2");

    let out = s.stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[
            {"name":"c","image":"busybox","resources":{"limits":{"cpu":"100m","memory":"64Mi"}}}]}}"#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        jp(
            &s,
            "pod",
            "p",
            "{.status.phase} {.status.qosClass} {.spec.containers[0].resources.requests.cpu} {.spec.schedulerName}"
        ),
        "Pending Guaranteed 100m default-scheduler"
    );
    let err = s.err(&["set", "env", "pod/p", "A=b"]);
    assert!(
        err.contains("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{err}"
    );

    s.ok(&["create", "job", "pi", "--image=perl"]);
    let uid = jp(&s, "job", "pi", "{.metadata.uid}");
    assert_eq!(
        jp(
            &s,
            "job",
            "pi",
            "{.spec.selector.matchLabels.batch\\.kubernetes\\.io/controller-uid} {.spec.backoffLimit} {.spec.completionMode}"
        ),
        format!("{uid} 6 NonIndexed")
    );
}

#[test]
fn validation_errors_read_like_upstream() {
    let s = TestServer::start();
    let err = s.err(&["create", "namespace", "Bad.Name"]);
    assert!(
        err.contains(r#"The Namespace "Bad.Name" is invalid: metadata.name: Invalid value: "Bad.Name": a lowercase RFC 1123 label must consist of"#),
        "{err}"
    );
    s.ok(&["create", "namespace", "dev"]);
    assert_eq!(
        jp(&s, "ns", "dev", "{.status.phase} {.spec.finalizers[0]}"),
        "Active kubernetes"
    );
    let out = s.stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a b":"1"}}"#,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters"#),
        "{err}"
    );
    let out = s.stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"},
           "spec":{"selector":{"matchLabels":{"app":"a"}},
             "template":{"metadata":{"labels":{"app":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"b"}: `selector` does not match template `labels`"#),
        "{err}"
    );
    let out = s.stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"selector":{"app":"a"}}}"#,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.ports: Required value"), "{err}");
}

/// DefaultIngressClass admission: `kubectl create ingress` without `--class` gets the
/// default IngressClass; one naming a class keeps it.
#[test]
fn ingresses_get_the_default_class() {
    let s = TestServer::start();
    s.ok(&["create", "ingress", "before", "--rule=/a=svc:80"]);
    assert_eq!(jp(&s, "ingress", "before", "{.spec.ingressClassName}"), "");
    let class = r#"{"apiVersion":"networking.k8s.io/v1","kind":"IngressClass",
        "metadata":{"name":"k8rs","annotations":{"ingressclass.kubernetes.io/is-default-class":"true"}},
        "spec":{"controller":"k8rs.io/ingress"}}"#;
    let out = s.stdin(&["create", "-f", "-"], class);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.ok(&["create", "ingress", "plain", "--rule=/a=svc:80"]);
    assert_eq!(
        jp(&s, "ingress", "plain", "{.spec.ingressClassName}"),
        "k8rs"
    );
    s.ok(&[
        "create",
        "ingress",
        "other",
        "--class=nginx",
        "--rule=/a=svc:80",
    ]);
    assert_eq!(
        jp(&s, "ingress", "other", "{.spec.ingressClassName}"),
        "nginx"
    );
    let table = s.ok(&["get", "ingress", "plain"]);
    assert!(
        table.lines().nth(1).unwrap_or_default().contains(" k8rs "),
        "{table}"
    );
}
