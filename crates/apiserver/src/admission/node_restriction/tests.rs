//! NodeRestriction's decisions, with upstream's messages.

use std::sync::Arc;

use serde_json::{Value, json};
use store::Store;

use super::*;

struct Fixture {
    plugin: NodeRestriction,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let store: Arc<dyn Store> =
        Arc::new(store::sqlite::SqliteStore::open(dir.path().join("db")).expect("store"));
    let put = |key: &str, v: Value| {
        let store = store.clone();
        let key = key.to_string();
        async move {
            store
                .create(&key, serde_json::to_vec(&v).unwrap().into())
                .await
        }
    };
    put(
        "/registry/minions/n1",
        json!({"metadata": {"name": "n1", "uid": "node-uid"}}),
    )
    .await
    .unwrap();
    for (name, node) in [("mine", "n1"), ("theirs", "n2")] {
        let pod = json!({"metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid")},
                         "spec": {"nodeName": node}});
        put(&format!("/registry/pods/default/{name}"), pod)
            .await
            .unwrap();
    }
    Fixture {
        plugin: NodeRestriction::new(store),
        _dir: dir,
    }
}

fn info(group: &str, plural: &str) -> ResourceInfo {
    api::builtin::resources()
        .into_iter()
        .find(|r| r.group == group && r.plural == plural)
        .unwrap()
}

fn kubelet(node: &str) -> UserInfo {
    UserInfo::new(format!("system:node:{node}"), vec![NODES_GROUP.into()])
}

/// Runs the plugin as admission does: `admit` for creates and updates, `validate`
/// for deletes. Returns the refusal's message.
async fn run(
    f: &Fixture,
    user: &UserInfo,
    op: Operation,
    (group, plural, sub): (&str, &str, Option<&str>),
    mut object: Value,
    old: Option<Value>,
) -> Result<(), String> {
    let info = info(group, plural);
    let ns = object["metadata"]["namespace"].as_str().map(str::to_string);
    let mut req = Request {
        operation: op,
        info: &info,
        subresource: sub,
        namespace: ns.as_deref(),
        object: &mut object,
        old: old.as_ref(),
        user,
        dry_run: false,
    };
    let r = match op {
        Operation::Delete => f.plugin.validate(&req).await,
        _ => f.plugin.admit(&mut req).await,
    };
    r.map_err(|e| {
        assert!(e.code == 403 || e.code == 404, "{e:?}");
        e.message
    })
}

const PODS: (&str, &str, Option<&str>) = ("", "pods", None);

/// An edit that spoils a good mirror pod.
type Change = Box<dyn Fn(&mut Value)>;

fn mirror(node: &str) -> Value {
    json!({
        "metadata": {"name": "static-n1", "namespace": "default",
                     "annotations": {MIRROR_ANNOTATION: "h"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node,
                                          "uid": "node-uid", "controller": true}]},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
    })
}

#[tokio::test]
async fn nodes_create_only_their_own_self_contained_mirror_pods() {
    let f = fixture().await;
    let n1 = kubelet("n1");
    let create = |pod: Value| run(&f, &n1, Operation::Create, PODS, pod, None);
    assert_eq!(create(mirror("n1")).await, Ok(()));
    let admin = UserInfo::new("admin", vec!["system:masters".into()]);
    let plain = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {}});
    assert_eq!(
        run(&f, &admin, Operation::Create, PODS, plain.clone(), None).await,
        Ok(())
    );

    let refusals: Vec<(Change, &str)> = vec![
        (
            Box::new(|p| p["metadata"]["annotations"] = json!({})),
            r#"pods "static-n1" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#,
        ),
        (
            Box::new(|p| p["spec"]["nodeName"] = json!("n2")),
            r#"node "n1" can only create pods with spec.nodeName set to itself"#,
        ),
        (
            Box::new(|p| p["metadata"]["ownerReferences"] = json!([])),
            r#"node "n1" can only create pods with an owner reference set to itself"#,
        ),
        (
            Box::new(|p| {
                let o = p["metadata"]["ownerReferences"][0].clone();
                p["metadata"]["ownerReferences"] = json!([o.clone(), o]);
            }),
            r#"node "n1" can only create pods with a single owner reference set to itself"#,
        ),
        (
            Box::new(|p| p["metadata"]["ownerReferences"][0]["name"] = json!("n2")),
            r#"node "n1" can only create pods with an owner reference set to itself"#,
        ),
        (
            Box::new(|p| p["metadata"]["ownerReferences"][0]["controller"] = json!(false)),
            r#"node "n1" can only create pods with a controller owner reference set to itself"#,
        ),
        (
            Box::new(|p| p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = json!(true)),
            r#"node "n1" must not set blockOwnerDeletion on an owner reference"#,
        ),
        (
            Box::new(|p| p["metadata"]["ownerReferences"][0]["uid"] = json!("old")),
            "node n1 UID mismatch: expected old got node-uid",
        ),
        (
            Box::new(|p| p["spec"]["serviceAccountName"] = json!("default")),
            r#"node "n1" can not create pods that reference a service account"#,
        ),
        (
            Box::new(|p| p["spec"]["imagePullSecrets"] = json!([{"name": "s"}])),
            r#"node "n1" can not create pods that reference secrets"#,
        ),
        (
            Box::new(|p| {
                p["spec"]["containers"][0]["envFrom"] = json!([{"configMapRef": {"name": "c"}}])
            }),
            r#"node "n1" can not create pods that reference configmaps"#,
        ),
        (
            Box::new(|p| {
                p["spec"]["volumes"] = json!([{"name": "b", "projected": {"sources": [
                    {"clusterTrustBundle": {"name": "b", "path": "b"}}]}}])
            }),
            r#"node "n1" can not create pods that reference clustertrustbundles"#,
        ),
        (
            Box::new(|p| {
                p["spec"]["volumes"] =
                    json!([{"name": "d", "persistentVolumeClaim": {"claimName": "d"}}])
            }),
            r#"node "n1" can not create pods that reference persistentvolumeclaims"#,
        ),
        (
            Box::new(|p| {
                p["spec"]["volumes"] =
                    json!([{"name": "d", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}])
            }),
            r#"node "n1" can not create pods that reference persistentvolumeclaims"#,
        ),
    ];
    for (change, want) in refusals {
        let mut pod = mirror("n1");
        change(&mut pod);
        let err = create(pod).await.unwrap_err();
        assert!(err.ends_with(want), "{err} / {want}");
    }
    // A node whose Node is not there yet: upstream's NotFound.
    let n9 = kubelet("n9");
    let err = run(&f, &n9, Operation::Create, PODS, mirror("n9"), None)
        .await
        .unwrap_err();
    assert_eq!(err, r#"nodes "n9" not found"#);
    let nameless = UserInfo::new("system:node:", vec![NODES_GROUP.into()]);
    let err = run(&f, &nameless, Operation::Create, PODS, mirror("n1"), None)
        .await
        .unwrap_err();
    assert!(
        err.ends_with(r#"could not determine node from user "system:node:""#),
        "{err}"
    );
}

#[tokio::test]
async fn pods_deleted_updated_and_evicted_only_on_the_node() {
    let f = fixture().await;
    let n1 = kubelet("n1");
    let pod = |name: &str, node: &str| {
        json!({"metadata": {"name": name, "namespace": "default", "labels": {"a": "b"}},
               "spec": {"nodeName": node}})
    };
    let delete = |p: Value| run(&f, &n1, Operation::Delete, PODS, p, None);
    assert_eq!(delete(pod("mine", "n1")).await, Ok(()));
    assert_eq!(
        delete(pod("theirs", "n2")).await.unwrap_err(),
        r#"pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself"#
    );
    let err = run(
        &f,
        &n1,
        Operation::Update,
        PODS,
        pod("mine", "n1"),
        Some(pod("mine", "n1")),
    )
    .await
    .unwrap_err();
    assert!(
        err.ends_with(
            r#"unexpected operation "UPDATE", node "n1" can only create and delete mirror pods"#
        ),
        "{err}"
    );

    let status = ("", "pods", Some("status"));
    let update = |old: Value, new: Value| run(&f, &n1, Operation::Update, status, new, Some(old));
    assert_eq!(update(pod("mine", "n1"), pod("mine", "n1")).await, Ok(()));
    let err = update(pod("theirs", "n2"), pod("theirs", "n2"))
        .await
        .unwrap_err();
    assert!(
        err.ends_with(
            r#"node "n1" can only update pod status for pods with spec.nodeName set to itself"#
        ),
        "{err}"
    );
    let mut relabelled = pod("mine", "n1");
    relabelled["metadata"]["labels"]["a"] = json!("c");
    let err = update(pod("mine", "n1"), relabelled).await.unwrap_err();
    assert!(
        err.ends_with(r#"node "n1" cannot update labels through pod status"#),
        "{err}"
    );
    let mut claimed = pod("mine", "n1");
    claimed["status"] =
        json!({"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "x"}]});
    let err = update(pod("mine", "n1"), claimed).await.unwrap_err();
    assert!(
        err.ends_with("cannot update resource claim statues"),
        "{err}"
    );

    let eviction = ("", "pods", Some("eviction"));
    let evict = |name: &str| {
        let e = json!({"metadata": {"name": name, "namespace": "default"}});
        run(&f, &n1, Operation::Create, eviction, e, None)
    };
    assert_eq!(evict("mine").await, Ok(()));
    assert_eq!(
        evict("theirs").await.unwrap_err(),
        r#"pods "theirs" is forbidden: node n1 can only evict pods with spec.nodeName set to itself"#
    );
    assert_eq!(evict("gone").await.unwrap_err(), r#"pods "gone" not found"#);
    let err = run(
        &f,
        &n1,
        Operation::Create,
        ("", "pods", Some("exec")),
        pod("mine", "n1"),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.ends_with(
            r#"unexpected pod subresource "exec", only 'status' and 'eviction' are allowed"#
        ),
        "{err}"
    );
}

#[tokio::test]
async fn tokens_only_for_pods_on_the_node() {
    let f = fixture().await;
    let n1 = kubelet("n1");
    let token = ("", "serviceaccounts", Some("token"));
    let request = |bound: Value| {
        let r = json!({"metadata": {"name": "default", "namespace": "default"},
                       "spec": {"boundObjectRef": bound}});
        run(&f, &n1, Operation::Create, token, r, None)
    };
    let pod = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});
    assert_eq!(request(pod("mine", "mine-uid")).await, Ok(()));
    for (bound, want) in [
        (Value::Null, "node requested token not bound to a pod"),
        (
            json!({"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u"}),
            "node requested token not bound to a pod",
        ),
        (
            pod("mine", ""),
            "node requested token with a pod binding without a uid",
        ),
        (
            pod("mine", "old"),
            "the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated",
        ),
        (
            pod("theirs", "theirs-uid"),
            "node requested token bound to a pod scheduled on a different node",
        ),
    ] {
        let err = request(bound).await.unwrap_err();
        assert_eq!(
            err,
            format!(r#"serviceaccounts "default" is forbidden: {want}"#)
        );
    }
    assert_eq!(
        request(pod("gone", "u")).await.unwrap_err(),
        r#"pods "gone" not found"#
    );
}

#[tokio::test]
async fn nodes_keep_to_their_own_node_labels_and_taints() {
    let f = fixture().await;
    let n1 = kubelet("n1");
    let nodes = ("", "nodes", None);
    let node = |name: &str, labels: Value| json!({"metadata": {"name": name, "labels": labels}, "spec": {}});
    let create = |n: Value| run(&f, &n1, Operation::Create, nodes, n, None);
    let kubelet_labels = json!({"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux",
        "node.kubernetes.io/exclude-from-external-load-balancers": "",
        "a.kubelet.kubernetes.io/x": "y", "example.com/team": "a"});
    assert_eq!(create(node("n1", kubelet_labels.clone())).await, Ok(()));
    assert_eq!(
        create(node("n2", json!({}))).await.unwrap_err(),
        r#"nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2""#
    );
    let err = create(node(
        "n1",
        json!({"node-restriction.kubernetes.io/pool": "a", "node-role.kubernetes.io/control-plane": "",
               "foo.k8s.io/x": "y"}),
    ))
    .await
    .unwrap_err();
    assert!(
        err.ends_with(r#"node "n1" is not allowed to set the following labels: foo.k8s.io/x, node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane"#),
        "{err}"
    );
    let mut sourced = node("n1", json!({}));
    sourced["spec"]["configSource"] = json!({"configMap": {"name": "c"}});
    let err = create(sourced).await.unwrap_err();
    assert!(
        err.ends_with("is not allowed to create pods with a non-nil configSource"),
        "{err}"
    );

    for sub in [None, Some("status")] {
        let update = |old: Value, new: Value| {
            run(
                &f,
                &n1,
                Operation::Update,
                ("", "nodes", sub),
                new,
                Some(old),
            )
        };
        let old = node(
            "n1",
            json!({"node-restriction.kubernetes.io/pool": "a", "a": "b"}),
        );
        let mut new = old.clone();
        new["metadata"]["labels"]["a"] = json!("c");
        new["spec"]["taints"] = json!([]);
        assert_eq!(update(old.clone(), new.clone()).await, Ok(()), "{sub:?}");
        new["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        let err = update(old.clone(), new).await.unwrap_err();
        assert!(
            err.ends_with(r#"node "n1" is not allowed to modify taints"#),
            "{err}"
        );
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"a": "b", "topology.kubernetes.io/zone": "z"});
        let err = update(old, new).await.unwrap_err();
        assert_eq!(
            err,
            r#"nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"#
        );
    }
}

#[tokio::test]
async fn leases_and_claim_status() {
    let f = fixture().await;
    let n1 = kubelet("n1");
    let leases = ("coordination.k8s.io", "leases", None);
    let lease = |ns: &str, name: &str| json!({"metadata": {"name": name, "namespace": ns}});
    let create = |l: Value| run(&f, &n1, Operation::Create, leases, l, None);
    assert_eq!(create(lease("kube-node-lease", "n1")).await, Ok(()));
    assert_eq!(
        create(lease("kube-node-lease", "n2")).await.unwrap_err(),
        r#"leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node"#
    );
    let err = create(lease("default", "n1")).await.unwrap_err();
    assert!(
        err.ends_with(r#"can only access leases in the "kube-node-lease" system namespace"#),
        "{err}"
    );

    let claim = json!({"metadata": {"name": "d", "namespace": "default", "resourceVersion": "1"},
                       "spec": {"resources": {"requests": {"storage": "1Gi"}}},
                       "status": {"phase": "Bound"}});
    let status = ("", "persistentvolumeclaims", Some("status"));
    let mut grown = claim.clone();
    grown["metadata"]["resourceVersion"] = json!("2");
    grown["status"]["capacity"] = json!({"storage": "2Gi"});
    grown["status"]["conditions"] = json!([{"type": "Resizing", "status": "True"}]);
    let update = |new: Value| run(&f, &n1, Operation::Update, status, new, Some(claim.clone()));
    assert_eq!(update(grown.clone()).await, Ok(()));
    grown["status"]["phase"] = json!("Lost");
    grown["metadata"]["labels"] = json!({"a": "b"});
    let err = update(grown).await.unwrap_err();
    assert!(
        err.ends_with(r#"node "n1" is not allowed to update fields other than status.capacity and status.conditions: metadata.labels, status.phase"#),
        "{err}"
    );
    let err = run(
        &f,
        &n1,
        Operation::Update,
        ("", "persistentvolumeclaims", None),
        claim.clone(),
        Some(claim.clone()),
    )
    .await
    .unwrap_err();
    assert!(err.ends_with("may only update PVC status"), "{err}");
}
