//! The longer rule sets of the bootstrap roles: what `view` and `edit` gather (through
//! system:aggregate-to-view and -edit) and what the scheduler and controller manager
//! may do, as upstream's bootstrap policy has them.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::roles::{READ, WRITE, named, rule};

pub fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            "core",
            "pods replicationcontrollers replicationcontrollers/scale serviceaccounts services services/status endpoints persistentvolumeclaims persistentvolumeclaims/status configmaps",
        ),
        rule(
            READ,
            "core",
            "limitranges resourcequotas bindings events pods/status resourcequotas/status namespaces/status replicationcontrollers/status pods/log",
        ),
        rule(READ, "core", "namespaces"),
        rule(READ, "discovery.k8s.io", "endpointslices"),
        rule(
            READ,
            "apps",
            "controllerrevisions statefulsets statefulsets/scale statefulsets/status daemonsets daemonsets/status deployments deployments/scale deployments/status replicasets replicasets/scale replicasets/status",
        ),
        rule(
            READ,
            "autoscaling",
            "horizontalpodautoscalers horizontalpodautoscalers/status",
        ),
        rule(READ, "batch", "cronjobs cronjobs/status jobs jobs/status"),
        rule(
            READ,
            "extensions",
            "daemonsets daemonsets/status deployments deployments/scale deployments/status ingresses ingresses/status replicasets replicasets/scale replicasets/status replicationcontrollers/scale networkpolicies",
        ),
        rule(
            READ,
            "policy",
            "poddisruptionbudgets poddisruptionbudgets/status",
        ),
        rule(
            READ,
            "networking.k8s.io",
            "ingresses ingresses/status networkpolicies",
        ),
    ]
}

pub fn edit_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            "core",
            "pods/attach pods/exec pods/portforward pods/proxy secrets services/proxy",
        ),
        rule("impersonate", "core", "serviceaccounts"),
        rule(
            WRITE,
            "core",
            "pods pods/attach pods/exec pods/portforward pods/proxy",
        ),
        rule("create", "core", "pods/eviction"),
        rule(
            WRITE,
            "core",
            "configmaps events persistentvolumeclaims replicationcontrollers replicationcontrollers/scale secrets serviceaccounts services services/proxy",
        ),
        rule("create", "core", "serviceaccounts/token"),
        rule(
            WRITE,
            "apps",
            "daemonsets deployments deployments/rollback deployments/scale replicasets replicasets/scale statefulsets statefulsets/scale",
        ),
        rule(WRITE, "autoscaling", "horizontalpodautoscalers"),
        rule(WRITE, "batch", "cronjobs jobs"),
        rule(
            WRITE,
            "extensions",
            "daemonsets deployments deployments/rollback deployments/scale ingresses networkpolicies replicasets replicasets/scale replicationcontrollers/scale",
        ),
        rule(WRITE, "policy", "poddisruptionbudgets"),
        rule(WRITE, "networking.k8s.io", "ingresses networkpolicies"),
    ]
}

pub fn scheduler_rules() -> Vec<PolicyRule> {
    vec![
        rule("create patch update", "core events.k8s.io", "events"),
        rule("create", "coordination.k8s.io", "leases"),
        named(
            rule("get update", "coordination.k8s.io", "leases"),
            "kube-scheduler",
        ),
        rule(READ, "core", "nodes"),
        rule("delete get list watch", "core", "pods"),
        rule("create", "core", "bindings pods/binding"),
        rule("patch update", "core", "pods/status"),
        rule(READ, "core", "replicationcontrollers services"),
        rule(READ, "apps extensions", "replicasets"),
        rule(READ, "apps", "statefulsets"),
        rule(READ, "policy", "poddisruptionbudgets"),
        rule(READ, "core", "persistentvolumeclaims persistentvolumes"),
        rule("create", "authentication.k8s.io", "tokenreviews"),
        rule("create", "authorization.k8s.io", "subjectaccessreviews"),
        rule(READ, "storage.k8s.io", "csinodes"),
        rule(READ, "core", "namespaces"),
        rule(READ, "storage.k8s.io", "csidrivers csistoragecapacities"),
    ]
}

pub fn controller_manager_rules() -> Vec<PolicyRule> {
    vec![
        rule("create patch update", "core events.k8s.io", "events"),
        rule("create", "coordination.k8s.io", "leases"),
        named(
            rule("get update", "coordination.k8s.io", "leases"),
            "kube-controller-manager",
        ),
        rule("create", "core", "secrets serviceaccounts"),
        rule("delete", "core", "secrets"),
        rule(
            "get",
            "core",
            "configmaps namespaces secrets serviceaccounts",
        ),
        rule("update", "core", "secrets serviceaccounts"),
        rule("create", "authentication.k8s.io", "tokenreviews"),
        rule("create", "authorization.k8s.io", "subjectaccessreviews"),
        rule("list watch", "*", "*"),
        rule("create", "core", "serviceaccounts/token"),
    ]
}
