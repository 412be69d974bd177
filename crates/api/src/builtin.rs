//! The built-in resources this server serves, with upstream's names, scopes, verbs,
//! short names, categories, subresources and etcd key prefixes.

use crate::resource::{ResourceInfo, STANDARD_VERBS, Subresource};
use crate::{fields, printers, strategies};

/// Which verbs a resource has.
#[derive(Clone, Copy)]
enum Verbs {
    /// create delete deletecollection get list patch update watch
    Standard,
    /// Namespaces: no deletecollection.
    NoCollection,
    /// Virtual create-only resources (bindings, reviews).
    CreateOnly,
    /// componentstatuses.
    ReadOnly,
}

impl Verbs {
    fn list(self) -> Vec<String> {
        let v: &[&str] = match self {
            Verbs::Standard => STANDARD_VERBS,
            Verbs::NoCollection => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            Verbs::CreateOnly => &["create"],
            Verbs::ReadOnly => &["get", "list"],
        };
        v.iter().map(|s| s.to_string()).collect()
    }
}

struct Def {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    verbs: Verbs,
    subs: &'static [&'static str],
    /// Key prefix under /registry, upstream's.
    prefix: &'static str,
}

const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    prefix: &'static str,
) -> Def {
    Def {
        group,
        version,
        kind,
        plural,
        namespaced,
        short: &[],
        all: false,
        verbs: Verbs::Standard,
        subs: &[],
        prefix,
    }
}

impl Def {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short = s;
        self
    }
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn verbs(mut self, v: Verbs) -> Self {
        self.verbs = v;
        self
    }
    const fn subs(mut self, s: &'static [&'static str]) -> Self {
        self.subs = s;
        self
    }
}

const NS: bool = true;
const CLUSTER: bool = false;

const DEFS: &[Def] = &[
    // core/v1
    def("", "v1", "Binding", "bindings", NS, "").verbs(Verbs::CreateOnly),
    def(
        "",
        "v1",
        "ComponentStatus",
        "componentstatuses",
        CLUSTER,
        "",
    )
    .short(&["cs"])
    .verbs(Verbs::ReadOnly),
    def("", "v1", "ConfigMap", "configmaps", NS, "configmaps").short(&["cm"]),
    def("", "v1", "Endpoints", "endpoints", NS, "services/endpoints").short(&["ep"]),
    def("", "v1", "Event", "events", NS, "events").short(&["ev"]),
    def("", "v1", "LimitRange", "limitranges", NS, "limitranges").short(&["limits"]),
    def("", "v1", "Namespace", "namespaces", CLUSTER, "namespaces")
        .short(&["ns"])
        .verbs(Verbs::NoCollection)
        .subs(&["finalize", "status"]),
    def("", "v1", "Node", "nodes", CLUSTER, "minions")
        .short(&["no"])
        .subs(&["proxy", "status"]),
    def(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        NS,
        "persistentvolumeclaims",
    )
    .short(&["pvc"])
    .subs(&["status"]),
    def(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        CLUSTER,
        "persistentvolumes",
    )
    .short(&["pv"])
    .subs(&["status"]),
    def("", "v1", "Pod", "pods", NS, "pods")
        .short(&["po"])
        .all()
        .subs(&[
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
            "resize",
            "status",
        ]),
    def("", "v1", "PodTemplate", "podtemplates", NS, "podtemplates"),
    def(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        NS,
        "controllers",
    )
    .short(&["rc"])
    .all()
    .subs(&["scale", "status"]),
    def(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        NS,
        "resourcequotas",
    )
    .short(&["quota"])
    .subs(&["status"]),
    def("", "v1", "Secret", "secrets", NS, "secrets"),
    def(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        NS,
        "serviceaccounts",
    )
    .short(&["sa"])
    .subs(&["token"]),
    def("", "v1", "Service", "services", NS, "services/specs")
        .short(&["svc"])
        .all()
        .subs(&["proxy", "status"]),
    // apps/v1
    def(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        NS,
        "controllerrevisions",
    ),
    def("apps", "v1", "DaemonSet", "daemonsets", NS, "daemonsets")
        .short(&["ds"])
        .all()
        .subs(&["status"]),
    def("apps", "v1", "Deployment", "deployments", NS, "deployments")
        .short(&["deploy"])
        .all()
        .subs(&["scale", "status"]),
    def("apps", "v1", "ReplicaSet", "replicasets", NS, "replicasets")
        .short(&["rs"])
        .all()
        .subs(&["scale", "status"]),
    def(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        NS,
        "statefulsets",
    )
    .short(&["sts"])
    .all()
    .subs(&["scale", "status"]),
    // batch/v1
    def("batch", "v1", "CronJob", "cronjobs", NS, "cronjobs")
        .short(&["cj"])
        .all()
        .subs(&["status"]),
    def("batch", "v1", "Job", "jobs", NS, "jobs")
        .all()
        .subs(&["status"]),
    // autoscaling
    def(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        NS,
        "horizontalpodautoscalers",
    )
    .short(&["hpa"])
    .all()
    .subs(&["status"]),
    // networking.k8s.io/v1
    def(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        CLUSTER,
        "ingressclasses",
    ),
    def(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        NS,
        "ingress",
    )
    .short(&["ing"])
    .subs(&["status"]),
    def(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        NS,
        "networkpolicies",
    )
    .short(&["netpol"]),
    // policy/v1
    def(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        NS,
        "poddisruptionbudgets",
    )
    .short(&["pdb"])
    .subs(&["status"]),
    // rbac.authorization.k8s.io/v1
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        CLUSTER,
        "clusterrolebindings",
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        CLUSTER,
        "clusterroles",
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        NS,
        "rolebindings",
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        NS,
        "roles",
    ),
    // authentication / authorization (virtual, create-only)
    def(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        CLUSTER,
        "",
    )
    .verbs(Verbs::CreateOnly),
    def(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        CLUSTER,
        "",
    )
    .verbs(Verbs::CreateOnly),
    def(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        NS,
        "",
    )
    .verbs(Verbs::CreateOnly),
    def(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        CLUSTER,
        "",
    )
    .verbs(Verbs::CreateOnly),
    def(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        CLUSTER,
        "",
    )
    .verbs(Verbs::CreateOnly),
    def(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        CLUSTER,
        "",
    )
    .verbs(Verbs::CreateOnly),
    // coordination.k8s.io/v1
    def("coordination.k8s.io", "v1", "Lease", "leases", NS, "leases"),
    // discovery.k8s.io/v1
    def(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        NS,
        "endpointslices",
    ),
    // events.k8s.io/v1 (the same objects as core events, another shape)
    def("events.k8s.io", "v1", "Event", "events", NS, "events").short(&["ev"]),
    // scheduling.k8s.io/v1
    def(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        CLUSTER,
        "priorityclasses",
    )
    .short(&["pc"]),
    // storage.k8s.io/v1
    def(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        CLUSTER,
        "storageclasses",
    )
    .short(&["sc"]),
    // apiextensions.k8s.io/v1
    def(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        CLUSTER,
        "apiextensions.k8s.io/customresourcedefinitions",
    )
    .short(&["crd", "crds"])
    .subs(&["status"]),
    // metrics.k8s.io/v1beta1 (metrics-server's API, computed from the kubelets)
    def(
        "metrics.k8s.io",
        "v1beta1",
        "NodeMetrics",
        "nodes",
        CLUSTER,
        "",
    )
    .verbs(Verbs::ReadOnly),
    def("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", NS, "").verbs(Verbs::ReadOnly),
];

/// The kind and verbs of a built-in subresource.
fn subresource(
    parent_group: &str,
    parent_version: &str,
    parent_kind: &str,
    name: &str,
) -> Subresource {
    let s = |group: &str, version: &str, kind: &str, verbs: &[&str]| Subresource {
        name: name.to_string(),
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
    };
    let proxy_verbs: &[&str] = &["create", "delete", "get", "patch", "update"];
    match name {
        "status" | "ephemeralcontainers" | "resize" => s(
            parent_group,
            parent_version,
            parent_kind,
            &["get", "patch", "update"],
        ),
        "scale" => s("autoscaling", "v1", "Scale", &["get", "patch", "update"]),
        "binding" => s("", "v1", "Binding", &["create"]),
        "eviction" => s("policy", "v1", "Eviction", &["create"]),
        "token" => s("authentication.k8s.io", "v1", "TokenRequest", &["create"]),
        "finalize" => s("", "v1", "Namespace", &["update"]),
        "log" => s("", "v1", "Pod", &["get"]),
        "exec" => s("", "v1", "PodExecOptions", &["create", "get"]),
        "attach" => s("", "v1", "PodAttachOptions", &["create", "get"]),
        "portforward" => s("", "v1", "PodPortForwardOptions", &["create", "get"]),
        "proxy" => s("", "v1", &format!("{parent_kind}ProxyOptions"), proxy_verbs),
        other => unreachable!("unknown built-in subresource {other}"),
    }
}

/// Every built-in resource, each with its strategy and printer.
pub fn resources() -> Vec<ResourceInfo> {
    DEFS.iter()
        .map(|d| ResourceInfo {
            group: d.group.to_string(),
            version: d.version.to_string(),
            kind: d.kind.to_string(),
            plural: d.plural.to_string(),
            singular: d.kind.to_lowercase(),
            namespaced: d.namespaced,
            short_names: d.short.iter().map(|s| s.to_string()).collect(),
            categories: if d.all {
                vec!["all".to_string()]
            } else {
                Vec::new()
            },
            verbs: d.verbs.list(),
            subresources: d
                .subs
                .iter()
                .map(|s| subresource(d.group, d.version, d.kind, s))
                .collect(),
            storage_prefix: if d.prefix.is_empty() {
                String::new()
            } else {
                format!("/registry/{}", d.prefix)
            },
            strategy: strategies::for_resource(d.group, d.plural),
            printer: printers::for_resource(d.group, d.plural),
            selectable_fields: fields::for_resource(d.group, d.plural),
            custom: false,
        })
        .collect()
}

/// Whether the resource is stored (virtual ones like reviews and bindings are not).
pub fn is_stored(info: &ResourceInfo) -> bool {
    !info.storage_prefix.is_empty()
}

/// The built-in API groups in upstream's discovery order, each with its versions
/// (preferred first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for d in DEFS.iter().filter(|d| !d.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == d.group) {
            Some((_, versions)) if !versions.contains(&d.version) => versions.push(d.version),
            Some(_) => {}
            None => out.push((d.group, vec![d.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        let all = resources();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "duplicate {}",
                    a.plural
                );
            }
        }
        let nodes = all.iter().find(|r| r.plural == "nodes").unwrap();
        assert_eq!(nodes.key(None, "n1"), "/registry/minions/n1");
        let svc = all.iter().find(|r| r.plural == "services").unwrap();
        assert_eq!(
            svc.key(Some("default"), "kubernetes"),
            "/registry/services/specs/default/kubernetes"
        );
        assert_eq!(
            svc.subresource("status").unwrap().verbs,
            ["get", "patch", "update"]
        );
    }
}
