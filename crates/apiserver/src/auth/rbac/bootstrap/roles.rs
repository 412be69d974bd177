//! The default policy a cluster starts with, as upstream's bootstrap policy defines
//! it (the roles a fresh cluster lists, with the rules upstream gives them), plus
//! what k8rs' node agent needs beyond the kubelet's rules. The agent's components run
//! with identities of their own, not the node's, as k3s gives them theirs: the service
//! proxy as upstream's kube-proxy ([`PROXY_USER`], bound to `system:node-proxier` by
//! upstream's own binding), the Ingress controller as [`INGRESS_USER`] in
//! [`INGRESS_GROUP`].

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::rule_sets::{controller_manager_rules, edit_rules, scheduler_rules, view_rules};

pub const READ: &str = "get list watch";
pub const WRITE: &str = "create delete deletecollection patch update";
const READ_WRITE: &str = "create delete deletecollection get list patch update watch";

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// A resource rule; groups are space-separated with `core` for the core group "".
pub fn rule(verbs: &str, groups: &str, resources: &str) -> PolicyRule {
    PolicyRule {
        verbs: words(verbs),
        api_groups: Some(
            groups
                .split_whitespace()
                .map(|g| {
                    if g == "core" {
                        String::new()
                    } else {
                        g.to_string()
                    }
                })
                .collect(),
        ),
        resources: Some(words(resources)),
        ..Default::default()
    }
}

pub fn named(mut r: PolicyRule, names: &str) -> PolicyRule {
    r.resource_names = Some(words(names));
    r
}

/// A rule on non-resource paths.
fn urls(verbs: &str, paths: &str) -> PolicyRule {
    PolicyRule {
        verbs: words(verbs),
        non_resource_urls: Some(words(paths)),
        ..Default::default()
    }
}

/// A bootstrap ClusterRole (or Role).
pub struct RoleSpec {
    pub name: &'static str,
    pub rules: Vec<PolicyRule>,
    /// Extra labels (the aggregate-to-* labels).
    pub labels: &'static [(&'static str, &'static str)],
    /// The label value this role aggregates (`admin` → aggregate-to-admin).
    pub aggregates: Option<&'static str>,
}

pub(super) fn role(name: &'static str, rules: Vec<PolicyRule>) -> RoleSpec {
    RoleSpec {
        name,
        rules,
        labels: &[],
        aggregates: None,
    }
}

/// A subject as (kind, name, namespace).
pub type SubjectSpec = (&'static str, &'static str, &'static str);

/// A bootstrap binding: role name and subjects.
pub struct BindingSpec {
    pub name: &'static str,
    pub role: &'static str,
    pub subjects: &'static [SubjectSpec],
}

/// The user every node's service proxy runs as (upstream's kube-proxy user; a client
/// certificate the join endpoint issues; in-process on a server).
pub const PROXY_USER: &str = "system:kube-proxy";

/// The user every node's Ingress controller runs as (a client certificate the join
/// endpoint issues; in-process on a server).
pub const INGRESS_USER: &str = "system:k8rs-ingress";
/// Its group, which the `k8rs:ingress-node` bindings name.
pub const INGRESS_GROUP: &str = "k8rs:ingress";

pub const AGGREGATE_LABEL_PREFIX: &str = "rbac.authorization.k8s.io/aggregate-to-";

/// What the kubelet may do (upstream's NodeRules): the `system:node` role and the
/// Node authorizer's rules.
pub fn node_rules() -> Vec<PolicyRule> {
    vec![
        rule("create", "authentication.k8s.io", "tokenreviews"),
        rule(
            "create",
            "authorization.k8s.io",
            "localsubjectaccessreviews subjectaccessreviews",
        ),
        rule(READ, "core", "services"),
        rule("create get list watch", "core", "nodes"),
        rule("patch update", "core", "nodes/status"),
        rule("patch update", "core", "nodes"),
        rule("create patch update", "core events.k8s.io", "events"),
        rule(READ, "core", "pods"),
        rule("create delete", "core", "pods"),
        rule("patch update", "core", "pods/status"),
        rule("create", "core", "pods/eviction"),
        rule(READ, "core", "secrets configmaps"),
        rule("get", "core", "persistentvolumeclaims persistentvolumes"),
        rule("get patch update", "core", "persistentvolumeclaims/status"),
        rule("create", "core", "serviceaccounts/token"),
        rule(
            "create get list watch",
            "certificates.k8s.io",
            "certificatesigningrequests",
        ),
        rule(
            "create delete get patch update",
            "coordination.k8s.io",
            "leases",
        ),
        rule("get", "storage.k8s.io", "volumeattachments"),
        rule(READ, "storage.k8s.io", "csidrivers"),
        rule(
            "create delete get patch update",
            "storage.k8s.io",
            "csinodes",
        ),
        rule(READ, "node.k8s.io", "runtimeclasses"),
    ]
}

pub fn cluster_roles() -> Vec<RoleSpec> {
    let mut roles = vec![
        role("cluster-admin", vec![rule("*", "*", "*"), urls("*", "*")]),
        RoleSpec {
            name: "admin",
            rules: Vec::new(),
            labels: &[],
            aggregates: Some("admin"),
        },
        RoleSpec {
            name: "edit",
            rules: Vec::new(),
            labels: &[("rbac.authorization.k8s.io/aggregate-to-admin", "true")],
            aggregates: Some("edit"),
        },
        RoleSpec {
            name: "view",
            rules: Vec::new(),
            labels: &[("rbac.authorization.k8s.io/aggregate-to-edit", "true")],
            aggregates: Some("view"),
        },
        RoleSpec {
            name: "system:aggregate-to-admin",
            rules: vec![
                rule(
                    "create",
                    "authorization.k8s.io",
                    "localsubjectaccessreviews",
                ),
                rule(
                    READ_WRITE,
                    "rbac.authorization.k8s.io",
                    "rolebindings roles",
                ),
            ],
            labels: &[("rbac.authorization.k8s.io/aggregate-to-admin", "true")],
            aggregates: None,
        },
        RoleSpec {
            name: "system:aggregate-to-edit",
            rules: edit_rules(),
            labels: &[("rbac.authorization.k8s.io/aggregate-to-edit", "true")],
            aggregates: None,
        },
        RoleSpec {
            name: "system:aggregate-to-view",
            rules: view_rules(),
            labels: &[("rbac.authorization.k8s.io/aggregate-to-view", "true")],
            aggregates: None,
        },
        role(
            "system:discovery",
            vec![urls(
                "get",
                "/api /api/* /apis /apis/* /healthz /livez /openapi /openapi/* /readyz /version /version/",
            )],
        ),
        role(
            "system:public-info-viewer",
            vec![urls("get", "/healthz /livez /readyz /version /version/")],
        ),
        role(
            "system:basic-user",
            vec![
                rule(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews selfsubjectrulesreviews",
                ),
                rule("create", "authentication.k8s.io", "selfsubjectreviews"),
            ],
        ),
        role(
            "system:monitoring",
            vec![urls(
                "get",
                "/metrics /metrics/slis /livez /readyz /healthz /livez/* /readyz/* /healthz/*",
            )],
        ),
        role(
            "system:auth-delegator",
            vec![
                rule("create", "authentication.k8s.io", "tokenreviews"),
                rule("create", "authorization.k8s.io", "subjectaccessreviews"),
            ],
        ),
        role(
            "system:service-account-issuer-discovery",
            vec![urls(
                "get",
                "/.well-known/openid-configuration /.well-known/openid-configuration/ /openid/v1/jwks /openid/v1/jwks/",
            )],
        ),
        role("system:node", node_rules()),
        role(
            "system:node-bootstrapper",
            vec![rule(
                "create get list watch",
                "certificates.k8s.io",
                "certificatesigningrequests",
            )],
        ),
        role(
            "system:node-proxier",
            vec![
                rule("list watch", "core", "services endpoints"),
                rule(READ, "core", "nodes"),
                rule("create patch update", "core events.k8s.io", "events"),
                rule("list watch", "discovery.k8s.io", "endpointslices"),
            ],
        ),
        role(
            "system:node-problem-detector",
            vec![
                rule("get", "core", "nodes"),
                rule("patch", "core", "nodes/status"),
                rule("create patch update", "core events.k8s.io", "events"),
            ],
        ),
        role(
            "system:kubelet-api-admin",
            vec![
                rule("get list watch proxy", "core", "nodes"),
                rule(
                    "*",
                    "core",
                    "nodes/log nodes/metrics nodes/proxy nodes/stats",
                ),
            ],
        ),
        role(
            "system:kube-dns",
            vec![rule("list watch", "core", "endpoints services")],
        ),
        role(
            "system:kube-aggregator",
            vec![rule(READ, "core", "endpoints services")],
        ),
        role(
            "system:heapster",
            vec![
                rule(READ, "core", "events namespaces nodes pods"),
                rule(READ, "extensions", "deployments"),
            ],
        ),
        role(
            "system:volume-scheduler",
            vec![
                rule("get list patch update watch", "core", "persistentvolumes"),
                rule(READ, "storage.k8s.io", "storageclasses"),
                rule(
                    "get list patch update watch",
                    "core",
                    "persistentvolumeclaims",
                ),
            ],
        ),
        role(
            "system:persistent-volume-provisioner",
            vec![
                rule("create delete get list watch", "core", "persistentvolumes"),
                rule("get list update watch", "core", "persistentvolumeclaims"),
                rule(READ, "storage.k8s.io", "storageclasses"),
                rule("create list patch update watch", "core", "events"),
            ],
        ),
        role("system:kube-scheduler", scheduler_rules()),
        role("system:kube-controller-manager", controller_manager_rules()),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![rule(
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests/nodeclient",
            )],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![rule(
                "create",
                "certificates.k8s.io",
                "certificatesigningrequests/selfnodeclient",
            )],
        ),
        // k8rs: what every node's Ingress controller reads (bound to INGRESS_GROUP).
        role(
            "k8rs:ingress-node",
            vec![
                rule(READ, "networking.k8s.io", "ingresses ingressclasses"),
                rule(READ, "core", "services nodes"),
                rule(READ, "discovery.k8s.io", "endpointslices"),
                // TLS key pairs, watched with a type=kubernetes.io/tls field selector.
                rule("list watch", "core", "secrets"),
            ],
        ),
    ];
    for (signer, name) in [
        (
            "kubernetes.io/kube-apiserver-client",
            "system:certificates.k8s.io:kube-apiserver-client-approver",
        ),
        (
            "kubernetes.io/kube-apiserver-client-kubelet",
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
        ),
        (
            "kubernetes.io/kubelet-serving",
            "system:certificates.k8s.io:kubelet-serving-approver",
        ),
        (
            "kubernetes.io/legacy-unknown",
            "system:certificates.k8s.io:legacy-unknown-approver",
        ),
    ] {
        roles.push(role(
            name,
            vec![named(
                rule("approve", "certificates.k8s.io", "signers"),
                signer,
            )],
        ));
    }
    roles.extend(super::controller_roles::roles());
    roles
}

/// Namespaced bootstrap Roles: (namespace, role).
pub fn roles() -> Vec<(&'static str, RoleSpec)> {
    vec![(
        "kube-system",
        // k8rs: each node publishes where its Ingress controller listens.
        role(
            "k8rs:ingress-node",
            vec![
                rule("create get", "core", "services"),
                rule(
                    "create delete get patch update",
                    "discovery.k8s.io",
                    "endpointslices",
                ),
            ],
        ),
    )]
}

const AUTHENTICATED: (&str, &str, &str) = ("Group", "system:authenticated", "");

pub fn cluster_role_bindings() -> Vec<BindingSpec> {
    let mut bindings = vec![
        BindingSpec {
            name: "cluster-admin",
            role: "cluster-admin",
            subjects: &[("Group", "system:masters", "")],
        },
        BindingSpec {
            name: "system:basic-user",
            role: "system:basic-user",
            subjects: &[AUTHENTICATED],
        },
        BindingSpec {
            name: "system:discovery",
            role: "system:discovery",
            subjects: &[AUTHENTICATED],
        },
        BindingSpec {
            name: "system:public-info-viewer",
            role: "system:public-info-viewer",
            subjects: &[AUTHENTICATED, ("Group", "system:unauthenticated", "")],
        },
        BindingSpec {
            name: "system:monitoring",
            role: "system:monitoring",
            subjects: &[("Group", "system:monitoring", "")],
        },
        BindingSpec {
            name: "system:service-account-issuer-discovery",
            role: "system:service-account-issuer-discovery",
            subjects: &[("Group", "system:serviceaccounts", "")],
        },
        // Upstream leaves it without subjects: the Node authorizer serves kubelets.
        BindingSpec {
            name: "system:node",
            role: "system:node",
            subjects: &[],
        },
        BindingSpec {
            name: "system:node-proxier",
            role: "system:node-proxier",
            subjects: &[("User", PROXY_USER, "")],
        },
        BindingSpec {
            name: "system:kube-dns",
            role: "system:kube-dns",
            subjects: &[("ServiceAccount", "kube-dns", "kube-system")],
        },
        BindingSpec {
            name: "system:kube-scheduler",
            role: "system:kube-scheduler",
            subjects: &[("User", "system:kube-scheduler", "")],
        },
        BindingSpec {
            name: "system:volume-scheduler",
            role: "system:volume-scheduler",
            subjects: &[("User", "system:kube-scheduler", "")],
        },
        BindingSpec {
            name: "system:kube-controller-manager",
            role: "system:kube-controller-manager",
            subjects: &[("User", "system:kube-controller-manager", "")],
        },
        // k8rs: the Ingress controller's identity (the proxy's is upstream's binding).
        BindingSpec {
            name: "k8rs:ingress-node",
            role: "k8rs:ingress-node",
            subjects: &[("Group", INGRESS_GROUP, "")],
        },
    ];
    bindings.extend(super::controller_roles::bindings());
    bindings
}

/// Subjects earlier k8rs versions gave k8rs' own bindings and this one does not:
/// (namespace of a RoleBinding or `None`, binding, subject). Nodes read every Secret
/// through `k8rs:ingress-node` until the Ingress controller had its own identity.
pub fn retired_subjects() -> Vec<(Option<&'static str>, &'static str, SubjectSpec)> {
    const NODES: SubjectSpec = ("Group", "system:nodes", "");
    vec![
        (None, "k8rs:ingress-node", NODES),
        (Some("kube-system"), "k8rs:ingress-node", NODES),
    ]
}

/// ClusterRoleBindings earlier k8rs versions created and this one does not: deleted at
/// start unless an administrator took them over (`autoupdate: "false"`). Every node
/// listed all Nodes, Services and Endpoints through `k8rs:node-proxier` until the
/// service proxy had its own identity.
pub fn retired_cluster_role_bindings() -> Vec<&'static str> {
    vec!["k8rs:node-proxier"]
}

/// Namespaced bootstrap RoleBindings: (namespace, binding of a Role of that namespace).
pub fn role_bindings() -> Vec<(&'static str, BindingSpec)> {
    vec![(
        "kube-system",
        BindingSpec {
            name: "k8rs:ingress-node",
            role: "k8rs:ingress-node",
            subjects: &[("Group", INGRESS_GROUP, "")],
        },
    )]
}
