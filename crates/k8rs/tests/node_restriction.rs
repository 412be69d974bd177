//! NodeRestriction admission on a real `k8rs server` (no agent), driven by kubectl
//! with a kubelet's client certificate (`system:node:n1` in `system:nodes`): the
//! node creates only self-contained mirror pods bound and owned by itself, deletes
//! and evicts only its own pods, asks for tokens only for them, and keeps its hands
//! off its taints, other Nodes and restricted labels. Messages are upstream's
//! (kube-apiserver 1.33 with the NodeRestriction plugin).

mod support;

use std::path::{Path, PathBuf};

use support::Server;
use support::colleague::{WITHIN, colleague, kubectl_as, text};

/// Runs kubectl as `kubeconfig`, which must be refused; returns its stderr.
fn refused(s: &Server, kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl_as(s, kubeconfig, args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} was allowed: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn ok(s: &Server, kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl_as(s, kubeconfig, args);
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn file(s: &Server, name: &str, content: &str) -> PathBuf {
    let path = s.dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A mirror pod of node n1 (owned by its Node, whose uid is `uid`) with `extra`
/// appended to its spec.
fn mirror(uid: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: static-n1\n  annotations:\n    kubernetes.io/config.mirror: h\n  ownerReferences:\n  - {{apiVersion: v1, kind: Node, name: n1, uid: {uid}, controller: true}}\nspec:\n  nodeName: n1\n  containers:\n  - {{name: c, image: demo}}\n{extra}"
    )
}

#[test]
fn kubelets_write_only_what_is_their_nodes() {
    let s = Server::start();
    s.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n");
    s.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n");
    for (pod, node) in [("on-n1", "n1"), ("on-n2", "n2")] {
        s.apply(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\nspec:\n  nodeName: {node}\n  containers:\n  - {{name: c, image: demo}}\n"
        ));
    }
    let node = colleague(&s, "system:node:n1", &["system:nodes"]);
    let uid = s.jsonpath(&["get", "node", "n1"], "{.metadata.uid}");

    // Pods: only self-contained mirror pods of its own.
    let plain = file(
        &s,
        "plain.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: plain\nspec:\n  nodeName: n1\n  containers:\n  - {name: c, image: demo}\n",
    );
    let err = refused(&s, &node, &["create", "-f", plain.to_str().unwrap()]);
    assert!(
        err.ends_with(r#"pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#),
        "{err}"
    );
    let with_config = file(
        &s,
        "config.yaml",
        &mirror(
            &uid,
            "  volumes:\n  - {name: v, configMap: {name: settings}}\n",
        ),
    );
    let err = refused(&s, &node, &["create", "-f", with_config.to_str().unwrap()]);
    assert!(
        err.ends_with(r#"node "n1" can not create pods that reference configmaps"#),
        "{err}"
    );
    let stale = file(&s, "stale.yaml", &mirror("not-the-uid", ""));
    let err = refused(&s, &node, &["create", "-f", stale.to_str().unwrap()]);
    assert!(
        err.ends_with(&format!(
            "node n1 UID mismatch: expected not-the-uid got {uid}"
        )),
        "{err}"
    );
    let good = file(&s, "mirror.yaml", &mirror(&uid, ""));
    ok(&s, &node, &["create", "-f", good.to_str().unwrap()]);
    ok(&s, &node, &["delete", "pod", "static-n1", "--wait=false"]);
    let err = refused(&s, &node, &["delete", "pod", "on-n2", "--wait=false"]);
    assert!(
        err.ends_with(r#"pods "on-n2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself"#),
        "{err}"
    );
    let eviction = file(
        &s,
        "eviction.json",
        r#"{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "on-n2"}}"#,
    );
    let err = refused(
        &s,
        &node,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/on-n2/eviction",
            "-f",
            eviction.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("node n1 can only evict pods with spec.nodeName set to itself"),
        "{err}"
    );

    // Tokens: only bound to its own pods (the graph relates the service account to
    // n1 through on-n1 once its watch saw the pod).
    let token_for = |pod: &str| {
        let uid = s.jsonpath(&["get", "pod", pod], "{.metadata.uid}");
        let args = [
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            &format!("--bound-object-name={pod}"),
            &format!("--bound-object-uid={uid}"),
        ]
        .map(str::to_string);
        kubectl_as(
            &s,
            &node,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    support::wait_for("a token for a pod of n1", WITHIN, || {
        token_for("on-n1").status.success().then_some(())
    });
    let out = token_for("on-n2");
    assert!(
        text(&out).contains(r#"serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node"#),
        "{}",
        text(&out)
    );
    let err = refused(&s, &node, &["create", "token", "default"]);
    assert!(
        err.ends_with("node requested token not bound to a pod"),
        "{err}"
    );

    // Its Node: its own labels, not restricted ones nor its taints; no other Node.
    ok(&s, &node, &["label", "node", "n1", "team=a"]);
    let err = refused(
        &s,
        &node,
        &[
            "label",
            "node",
            "n1",
            "node-restriction.kubernetes.io/pool=a",
        ],
    );
    assert!(
        err.ends_with(r#"nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"#),
        "{err}"
    );
    let err = refused(&s, &node, &["taint", "node", "n1", "k=v:NoSchedule"]);
    assert!(
        err.ends_with(r#"node "n1" is not allowed to modify taints"#),
        "{err}"
    );
    let n3 = file(
        &s,
        "n3.json",
        r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n3"}}"#,
    );
    let err = refused(
        &s,
        &node,
        &[
            "create",
            "--raw",
            "/api/v1/nodes",
            "-f",
            n3.to_str().unwrap(),
        ],
    );
    assert_eq!(
        err,
        r#"Error from server (Forbidden): nodes "n3" is forbidden: node "n1" is not allowed to modify node "n3""#
    );
}
