//! Decisions of the Node authorizer over a graph filled as the watches fill it.

use serde_json::json;

use super::*;

fn kubelet(node: &str) -> UserInfo {
    UserInfo::new(format!("system:node:{node}"), vec![NODES_GROUP.into()])
}

fn req(verb: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let (group, resource) = resource
        .split_once('.')
        .map_or(("", resource), |(r, g)| (g, r));
    Attributes {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
        path: None,
        field_selector: Vec::new(),
    }
}

fn reason(d: Decision) -> String {
    match d {
        Decision::NoOpinion(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A pod as the store holds it, bound to `node` ("" for none).
fn add_pod(authz: &NodeAuthorizer, name: &str, node: &str, secret: &str) {
    let pod = json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "serviceAccountName": "default",
            "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": secret}}]}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": format!("{name}-data")}}],
        },
    });
    let (node, named) = refs::pod(&pod);
    authz.graph.write().set_pod("default", name, &node, named);
}

#[test]
fn kubelets_only() {
    let node = NodeAuthorizer::default();
    let status = req("patch", "pods/status", "default", "web");
    assert_eq!(node.authorize(&kubelet("n1"), &status), Decision::Allow);
    let impostor = UserInfo::new("system:node:n1", vec![]);
    assert_eq!(
        node.authorize(&impostor, &status),
        Decision::NoOpinion(String::new())
    );
    let delete_ns = req("delete", "namespaces", "", "default");
    assert_eq!(
        node.authorize(&kubelet("n1"), &delete_ns),
        Decision::NoOpinion(String::new())
    );
}

#[test]
fn secrets_follow_pods_as_they_are_bound_and_deleted() {
    let authz = NodeAuthorizer::default();
    let (n1, n2) = (kubelet("n1"), kubelet("n2"));
    let get = req("get", "secrets", "default", "db");
    let refused = "no relationship found between node 'n1' and this object";

    add_pod(&authz, "web", "", "db");
    assert_eq!(reason(authz.authorize(&n1, &get)), refused);

    // The scheduler binds it: n1 may read the secret, n2 may not.
    add_pod(&authz, "web", "n1", "db");
    assert_eq!(authz.authorize(&n1, &get), Decision::Allow);
    assert!(matches!(authz.authorize(&n2, &get), Decision::NoOpinion(_)));
    let watch_one = req("watch", "secrets", "default", "db");
    assert_eq!(authz.authorize(&n1, &watch_one), Decision::Allow);
    let claim = req("get", "persistentvolumeclaims", "default", "web-data");
    assert_eq!(authz.authorize(&n1, &claim), Decision::Allow);
    let token = req("create", "serviceaccounts/token", "default", "default");
    assert_eq!(authz.authorize(&n1, &token), Decision::Allow);
    assert!(matches!(
        authz.authorize(&n2, &token),
        Decision::NoOpinion(_)
    ));

    // Never all secrets, never a write.
    let list = req("list", "secrets", "default", "");
    assert_eq!(reason(authz.authorize(&n1, &list)), "No Object name found");
    let update = req("update", "secrets", "default", "db");
    assert_eq!(
        reason(authz.authorize(&n1, &update)),
        "can only read resources of this type"
    );
    let list_claims = req("list", "persistentvolumeclaims", "default", "");
    assert_eq!(
        reason(authz.authorize(&n1, &list_claims)),
        "can only get individual resources of this type"
    );

    // The pod is deleted: the edges go with it.
    authz.graph.write().remove_pod("default", "web");
    assert_eq!(reason(authz.authorize(&n1, &get)), refused);
    assert!(matches!(
        authz.authorize(&n1, &claim),
        Decision::NoOpinion(_)
    ));
}

#[test]
fn volumes_through_bound_claims() {
    let authz = NodeAuthorizer::default();
    add_pod(&authz, "web", "n1", "db");
    let pv = json!({"metadata": {"name": "pv1"}, "spec": {
        "claimRef": {"namespace": "default", "name": "web-data"},
        "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi", "namespace": "kube-system"}},
    }});
    let (claim, secrets) = refs::volume(&pv);
    authz.graph.write().set_volume("pv1", claim, secrets);
    let get_pv = req("get", "persistentvolumes", "", "pv1");
    assert_eq!(authz.authorize(&kubelet("n1"), &get_pv), Decision::Allow);
    assert!(matches!(
        authz.authorize(&kubelet("n2"), &get_pv),
        Decision::NoOpinion(_)
    ));
    let csi = req("get", "secrets", "kube-system", "csi");
    assert_eq!(authz.authorize(&kubelet("n1"), &csi), Decision::Allow);
}

#[test]
fn own_node_lease_and_pods() {
    let authz = NodeAuthorizer::default();
    let n1 = kubelet("n1");
    assert_eq!(
        authz.authorize(&n1, &req("get", "nodes", "", "n1")),
        Decision::Allow
    );
    assert_eq!(
        reason(authz.authorize(&n1, &req("get", "nodes", "", "n2"))),
        "node 'n1' cannot read 'n2', only its own Node object"
    );
    // Writes are NodeRestriction admission's to confine, as upstream.
    for (verb, resource) in [("patch", "nodes/status"), ("update", "nodes")] {
        assert_eq!(
            authz.authorize(&n1, &req(verb, resource, "", "n2")),
            Decision::Allow
        );
    }
    // Listed and watched only by its own name (the metadata.name field selector).
    for verb in ["list", "watch"] {
        assert_eq!(
            authz.authorize(&n1, &req(verb, "nodes", "", "n1")),
            Decision::Allow
        );
        assert_eq!(
            reason(authz.authorize(&n1, &req(verb, "nodes", "", ""))),
            "node 'n1' cannot read all nodes, only its own Node object"
        );
    }
    assert_eq!(
        authz.authorize(&n1, &req("create", "nodes", "", "")),
        Decision::Allow
    );
    assert_eq!(
        reason(authz.authorize(&n1, &req("delete", "nodes", "", "n1"))),
        ""
    );
    let lease = |name: &str| {
        req(
            "patch",
            "leases.coordination.k8s.io",
            "kube-node-lease",
            name,
        )
    };
    assert_eq!(authz.authorize(&n1, &lease("n1")), Decision::Allow);
    assert_eq!(
        reason(authz.authorize(&n1, &lease("n2"))),
        "can only access node lease with the same name as the requesting node"
    );

    add_pod(&authz, "mine", "n1", "s");
    add_pod(&authz, "theirs", "n2", "s");
    let get = |name: &str| authz.authorize(&n1, &req("get", "pods", "default", name));
    assert_eq!(get("mine"), Decision::Allow);
    assert!(matches!(get("theirs"), Decision::NoOpinion(_)));
    // Writes are NodeRestriction admission's to confine, as upstream.
    for (verb, resource) in [("patch", "pods/status"), ("delete", "pods")] {
        assert_eq!(
            authz.authorize(&n1, &req(verb, resource, "default", "theirs")),
            Decision::Allow
        );
    }
    assert!(authz.rules_for(&n1, "default").unwrap().incomplete);
}

/// Upstream 1.33's AuthorizeNodeWithSelectors: pods only through the node's own
/// `spec.nodeName` field selector, or one bound pod by name.
#[test]
fn pods_listed_and_watched_by_node_name_selector() {
    let authz = NodeAuthorizer::default();
    let n1 = kubelet("n1");
    let with = |verb: &str, name: &str, selector: &str| {
        let mut a = req(verb, "pods", "", name);
        a.field_selector = api::selectors::FieldSelector::parse(selector)
            .unwrap()
            .requirements()
            .to_vec();
        a
    };
    let refused = "can only list/watch pods with spec.nodeName field selector";
    for verb in ["list", "watch"] {
        assert_eq!(
            authz.authorize(&n1, &with(verb, "", "spec.nodeName=n1")),
            Decision::Allow
        );
        assert_eq!(
            authz.authorize(
                &n1,
                &with(verb, "", "status.phase!=Failed,spec.nodeName==n1")
            ),
            Decision::Allow
        );
        for other in [
            "",
            "spec.nodeName=n2",
            "spec.nodeName!=n1",
            "status.phase=Running",
        ] {
            assert_eq!(
                reason(authz.authorize(&n1, &with(verb, "", other))),
                refused,
                "{verb} {other:?}"
            );
        }
    }
    add_pod(&authz, "mine", "n1", "s");
    add_pod(&authz, "theirs", "n2", "s");
    let mut one = with("watch", "mine", "");
    one.namespace = "default".into();
    assert_eq!(authz.authorize(&n1, &one), Decision::Allow);
    one.name = "theirs".into();
    assert_eq!(
        reason(authz.authorize(&n1, &one)),
        "no relationship found between node 'n1' and this object"
    );
    let evict = req("create", "pods/eviction", "default", "mine");
    assert_eq!(authz.authorize(&n1, &evict), Decision::Allow);
    let exec = req("create", "pods/exec", "default", "mine");
    assert_eq!(reason(authz.authorize(&n1, &exec)), "");
}
