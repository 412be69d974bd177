//! RBAC on a real `k8rs server` (no agent), driven by the installed kubectl: a
//! colleague's kubeconfig from `k8rs kubeconfig` is refused until a RoleBinding lets
//! it read, `kubectl auth can-i` (also `--as`, `--list`) answers from the same policy,
//! service account tokens are bound like users, aggregated roles pick up labelled
//! ClusterRoles, the bootstrap policy is upstream's, and anonymous callers see only
//! the public paths; a kubelet's certificate reaches only the Secrets of pods bound
//! to its node (the Node authorizer's graph), only the service proxy's own identity
//! lists EndpointSlices and only the Ingress controller's lists Secrets. Messages are upstream's (kube-apiserver 1.33 with RBAC).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::colleague::{WITHIN, colleague, eventually_ok, forbidden, kubectl_as, text};
use support::{Server, wait_for};

/// A kubeconfig for the same server with `user_yaml` as its credentials (a token, or
/// nothing for anonymous requests).
fn kubeconfig_with(s: &Server, name: &str, user_yaml: &str) -> PathBuf {
    let server = s.jsonpath(
        &["config", "view", "--raw"],
        "{.clusters[0].cluster.server}",
    );
    let ca = s.jsonpath(
        &["config", "view", "--raw"],
        "{.clusters[0].cluster.certificate-authority-data}",
    );
    let path = s.dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user: {user_yaml}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    path
}

fn can_i(s: &Server, kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl_as(s, kubeconfig, &[&["auth", "can-i"], args].concat());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn users_and_service_accounts_get_what_bindings_give() {
    let s = Server::start();
    let admin = s.kubeconfig.clone();
    let alice = colleague(&s, "alice", &["dev"]);

    let err = forbidden(&s, &alice, &["get", "pods"]);
    assert_eq!(
        err,
        r#"Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(can_i(&s, &alice, &["list", "pods"]), "no");
    assert_eq!(can_i(&s, &admin, &["list", "pods", "--as=alice"]), "no");
    // Everyone authenticated may ask about themselves and read discovery.
    assert_eq!(
        can_i(
            &s,
            &alice,
            &["create", "selfsubjectaccessreviews.authorization.k8s.io"]
        ),
        "yes"
    );
    kubectl_as(&s, &alice, &["api-versions"])
        .status
        .success()
        .then_some(())
        .expect("discovery");

    s.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "default",
    ]);
    eventually_ok(&s, &alice, &["get", "pods"]);
    let err = forbidden(
        &s,
        &alice,
        &["create", "configmap", "x", "--from-literal=a=b"],
    );
    assert!(
        err.ends_with(r#"configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "default""#),
        "{err}"
    );
    forbidden(&s, &alice, &["get", "pods", "-n", "kube-system"]);
    assert_eq!(can_i(&s, &alice, &["list", "pods"]), "yes");
    assert_eq!(can_i(&s, &alice, &["create", "pods"]), "no");
    assert_eq!(can_i(&s, &alice, &["get", "secrets"]), "no");
    assert_eq!(
        can_i(&s, &admin, &["list", "pods", "--as=alice", "-n", "default"]),
        "yes"
    );
    assert_eq!(
        can_i(
            &s,
            &admin,
            &["list", "pods", "--as=alice", "-n", "kube-system"]
        ),
        "no"
    );
    // A namespace is in itself: the binding in `default` lets her read it.
    kubectl_as(&s, &alice, &["get", "namespace", "default"])
        .status
        .success()
        .then_some(())
        .expect("get ns");
    let list = can_i(&s, &alice, &["--list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
        "{list}"
    );
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );
    // Impersonation needs the `impersonate` verb.
    let err = forbidden(&s, &alice, &["get", "pods", "--as=bob"]);
    assert!(
        err.ends_with(r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    // Groups from the certificate count: a binding to `dev` lets her edit.
    s.kubectl_ok(&[
        "create",
        "rolebinding",
        "dev-edit",
        "--clusterrole=edit",
        "--group=dev",
        "-n",
        "default",
    ]);
    eventually_ok(
        &s,
        &alice,
        &["create", "configmap", "x", "--from-literal=a=b"],
    );
    s.kubectl_ok(&["delete", "rolebinding", "dev-edit", "-n", "default"]);
    wait_for("the deleted binding to stop counting", WITHIN, || {
        (can_i(&s, &alice, &["create", "configmaps"]) == "no").then_some(())
    });

    // A service account token, denied until bound.
    s.kubectl_ok(&["create", "serviceaccount", "builder"]);
    let token = s
        .kubectl_ok(&["create", "token", "builder"])
        .trim()
        .to_string();
    let sa = kubeconfig_with(&s, "builder", &format!("{{token: {token}}}"));
    let err = forbidden(&s, &sa, &["get", "configmaps"]);
    assert!(
        err.ends_with(r#"User "system:serviceaccount:default:builder" cannot list resource "configmaps" in API group "" in the namespace "default""#),
        "{err}"
    );
    s.kubectl_ok(&[
        "create",
        "rolebinding",
        "builder-edit",
        "--clusterrole=edit",
        "--serviceaccount=default:builder",
    ]);
    eventually_ok(
        &s,
        &sa,
        &["create", "configmap", "built", "--from-literal=a=b"],
    );
    assert_eq!(
        can_i(
            &s,
            &admin,
            &[
                "create",
                "configmaps",
                "--as=system:serviceaccount:default:builder"
            ]
        ),
        "yes"
    );
    // Kubelets are served by the Node authorizer.
    let node = ["--as=system:node:n1", "--as-group=system:nodes"];
    assert_eq!(
        can_i(
            &s,
            &admin,
            &[&["patch", "pods", "--subresource=status"][..], &node].concat()
        ),
        "yes"
    );
    assert_eq!(
        can_i(&s, &admin, &[&["delete", "namespaces"][..], &node].concat()),
        "no"
    );
}

#[test]
fn bootstrap_policy_aggregation_and_anonymous_requests() {
    let s = Server::start();
    let roles = s.kubectl_ok(&["get", "clusterroles", "-o", "name"]);
    for r in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:node",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:auth-delegator",
        "system:aggregate-to-view",
        "system:controller:deployment-controller",
        "system:controller:namespace-controller",
    ] {
        assert!(
            roles
                .lines()
                .any(|l| l == format!("clusterrole.rbac.authorization.k8s.io/{r}")),
            "{r}: {roles}"
        );
    }
    let label = s.jsonpath(
        &["get", "clusterrole", "cluster-admin"],
        r"{.metadata.labels.kubernetes\.io/bootstrapping} {.metadata.annotations.rbac\.authorization\.kubernetes\.io/autoupdate}",
    );
    assert_eq!(label, "rbac-defaults true");
    // Upstream's controller roles, bound to the controllers' service accounts.
    let admin = s.kubeconfig.clone();
    let deployments = "--as=system:serviceaccount:kube-system:deployment-controller";
    assert_eq!(
        can_i(&s, &admin, &["create", "replicasets.apps", deployments]),
        "yes"
    );
    assert_eq!(can_i(&s, &admin, &["get", "secrets", deployments]), "no");
    let subjects = s.jsonpath(
        &["get", "clusterrolebinding", "system:public-info-viewer"],
        "{.subjects[*].name}",
    );
    assert_eq!(subjects, "system:authenticated system:unauthenticated");
    // The aggregation controller filled view, edit and admin from the labelled roles.
    wait_for("view to be aggregated", WITHIN, || {
        let view = s.jsonpath(&["get", "clusterrole", "view"], "{.rules[*].resources}");
        view.contains("pods").then_some(())
    });

    // A role labelled aggregate-to-view reaches view, then edit and admin.
    let alice = colleague(&s, "alice", &[]);
    s.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "default",
    ]);
    eventually_ok(&s, &alice, &["get", "pods"]);
    forbidden(&s, &alice, &["get", "secrets"]);
    s.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: secret-reader\n  labels:\n    rbac.authorization.k8s.io/aggregate-to-view: \"true\"\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get, list]\n",
    );
    for role in ["view", "edit", "admin"] {
        wait_for(&format!("{role} to gain secrets"), WITHIN, || {
            let rules = s.jsonpath(&["get", "clusterrole", role], "{.rules[*].resources}");
            rules.contains("secrets").then_some(())
        });
    }
    eventually_ok(&s, &alice, &["get", "secrets"]);
    s.kubectl_ok(&["delete", "clusterrole", "secret-reader"]);
    wait_for("view to lose secrets", WITHIN, || {
        let rules = s.jsonpath(&["get", "clusterrole", "view"], "{.rules[*].resources}");
        (!rules.contains("secrets")).then_some(())
    });

    // Anonymous: the public paths, nothing else (403s, as kube-apiserver with
    // anonymous requests on). curl, as kubectl prompts for credentials.
    let server = s.jsonpath(
        &["config", "view", "--raw"],
        "{.clusters[0].cluster.server}",
    );
    let anon = |path: &str| -> (String, String) {
        let out = Command::new("curl")
            .args(["-sk", "-w", "\n%{http_code}", &format!("{server}{path}")])
            .output()
            .expect("run curl");
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or_default();
        (code.to_string(), body.to_string())
    };
    for path in ["/healthz", "/version", "/readyz", "/livez"] {
        assert_eq!(anon(path).0, "200", "{path}");
    }
    let (code, body) = anon("/api/v1/namespaces/default/pods");
    assert_eq!(code, "403", "{body}");
    assert!(
        body.contains(r#"pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""#),
        "{body}"
    );
    let (code, body) = anon("/api");
    assert_eq!(code, "403", "{body}");
    assert!(
        body.contains(r#"forbidden: User \"system:anonymous\" cannot get path \"/api\""#),
        "{body}"
    );
}

/// A pod bound to `node` (no agent runs it) that uses `secret`.
fn bound_pod(name: &str, node: &str, secret: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  containers:\n  - name: c\n    image: demo\n    env:\n    - name: S\n      valueFrom:\n        secretKeyRef: {{name: {secret}, key: a}}\n"
    )
}

#[test]
fn kubelets_read_only_the_secrets_of_their_pods() {
    let s = Server::start();
    let node = colleague(&s, "system:node:n1", &["system:nodes"]);
    for secret in ["mine", "theirs"] {
        s.kubectl_ok(&["create", "secret", "generic", secret, "--from-literal=a=b"]);
    }
    s.apply(&bound_pod("on-n1", "n1", "mine"));
    s.apply(&bound_pod("on-n2", "n2", "theirs"));

    // The graph learns of the pod through its watch.
    eventually_ok(&s, &node, &["get", "secret", "mine"]);
    let err = forbidden(&s, &node, &["get", "secret", "theirs"]);
    assert!(
        err.ends_with(r#"secrets "theirs" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#),
        "{err}"
    );
    let err = forbidden(&s, &node, &["get", "secrets"]);
    assert!(
        err.ends_with(r#"cannot list resource "secrets" in API group "" in the namespace "default": No Object name found"#),
        "{err}"
    );
    let err = forbidden(&s, &node, &["get", "secrets", "-A"]);
    assert!(
        err.ends_with("can only read namespaced object of this type"),
        "{err}"
    );
    // Its own Node only.
    s.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n");
    // (kubectl patch reads the object first.)
    let patch = [
        "patch",
        "node",
        "n2",
        "-p",
        r#"{"metadata":{"labels":{"a":"b"}}}"#,
    ];
    let err = forbidden(&s, &node, &patch);
    assert!(
        err.ends_with("node 'n1' cannot read 'n2', only its own Node object"),
        "{err}"
    );

    // Upstream 1.33's AuthorizeNodeWithSelectors: its own Node by name or
    // metadata.name selector, pods by its spec.nodeName selector, nothing wider.
    let err = forbidden(&s, &node, &["get", "nodes"]);
    assert!(
        err.ends_with(r#"cannot list resource "nodes" in API group "" at the cluster scope: node 'n1' cannot read all nodes, only its own Node object"#),
        "{err}"
    );
    let mine = [
        "get",
        "nodes",
        "--field-selector=metadata.name=n1",
        "-o",
        "name",
    ];
    assert_eq!(kubectl_as(&s, &node, &mine).status.code(), Some(0));
    let err = forbidden(&s, &node, &["get", "pods", "-A"]);
    assert!(
        err.ends_with("can only list/watch pods with spec.nodeName field selector"),
        "{err}"
    );
    forbidden(
        &s,
        &node,
        &["get", "pods", "-A", "--field-selector=spec.nodeName=n2"],
    );
    let pods = [
        "get",
        "pods",
        "-A",
        "--field-selector=spec.nodeName=n1",
        "-o",
        "name",
    ];
    let out = kubectl_as(&s, &node, &pods);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pod/on-n1\n",
        "{}",
        text(&out)
    );

    // The pod goes, and the secret with it.
    s.kubectl_ok(&["delete", "pod", "on-n1", "--grace-period=0", "--force"]);
    wait_for("the deleted pod's secret to be refused", WITHIN, || {
        let out = kubectl_as(&s, &node, &["get", "secret", "mine"]);
        (!out.status.success() && text(&out).contains("no relationship found")).then_some(())
    });

    // The service proxy lists what a node may not, as upstream's kube-proxy user,
    // which upstream's binding names instead of every node.
    let err = forbidden(&s, &node, &["get", "endpointslices", "-A"]);
    assert!(
        err.ends_with(r#"User "system:node:n1" cannot list resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope"#),
        "{err}"
    );
    let proxy = colleague(&s, "system:kube-proxy", &[]);
    for kind in ["endpointslices", "services", "nodes"] {
        eventually_ok(&s, &proxy, &["get", kind, "-A"]);
    }
    let subjects = s.jsonpath(
        &["get", "clusterrolebinding", "system:node-proxier"],
        "{.subjects[*].name}",
    );
    assert_eq!(subjects, "system:kube-proxy");
    let bindings = s.kubectl_ok(&["get", "clusterrolebindings", "-o", "name"]);
    assert!(!bindings.contains("k8rs:node-proxier"), "{bindings}");

    // The Ingress controller lists Secrets (TLS key pairs) as its own user, which is
    // what the k8rs:ingress-node bindings name instead of every node.
    let ingress = colleague(&s, "system:k8rs-ingress", &["k8rs:ingress"]);
    eventually_ok(&s, &ingress, &["get", "secrets", "-A"]);
    let subjects = s.jsonpath(
        &["get", "clusterrolebinding", "k8rs:ingress-node"],
        "{.subjects[*].name}",
    );
    assert_eq!(subjects, "k8rs:ingress");
}
