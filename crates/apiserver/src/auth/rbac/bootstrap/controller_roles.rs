//! Upstream's controller roles, `system:controller:<name>`, each bound to the service
//! account `<name>` in kube-system, as kube-controller-manager runs its controllers
//! with `--use-service-account-credentials`. k8rs' controllers run in-process as
//! system:kube-controller-manager; the roles are here so that a fresh cluster lists
//! what upstream's lists and what tools and operators expect to find is there. The
//! set is upstream's for 1.33 with its default feature gates (no DRA, cluster trust
//! bundle, volume attributes class or storage version roles).

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::roles::{BindingSpec, READ, RoleSpec, SubjectSpec, named, role, rule};

/// What every controller may do with events.
fn events() -> PolicyRule {
    rule("create patch update", "core events.k8s.io", "events")
}

/// One controller: its role's name, its binding's subject and its rules.
struct Controller {
    role: &'static str,
    subjects: &'static [SubjectSpec],
    rules: Vec<PolicyRule>,
}

/// `controller!("name", rules…)`: role `system:controller:name`, bound to the
/// kube-system service account `name`; events rules are added by the caller.
macro_rules! controller {
    ($name:literal, $($rule:expr),* $(,)?) => {
        Controller {
            role: concat!("system:controller:", $name),
            subjects: &[("ServiceAccount", $name, "kube-system")],
            rules: vec![$($rule),*],
        }
    };
}

fn controllers() -> Vec<Controller> {
    const RW_RS: &str = "create delete get list patch update watch";
    let with_events = |mut c: Controller| {
        c.rules.push(events());
        c
    };
    let mut all: Vec<Controller> = [
        controller!(
            "attachdetach-controller",
            rule("list watch", "core", "persistentvolumes persistentvolumeclaims"),
            rule(READ, "core", "nodes"),
            rule("patch update", "core", "nodes/status"),
            rule("list watch", "core", "pods"),
            rule("create delete get list watch", "storage.k8s.io", "volumeattachments"),
            rule(READ, "storage.k8s.io", "csidrivers"),
            rule(READ, "storage.k8s.io", "csinodes"),
        ),
        controller!(
            "cronjob-controller",
            rule("get list watch update", "batch", "cronjobs"),
            rule(RW_RS, "batch", "jobs"),
            rule("update", "batch", "cronjobs/status"),
            rule("update", "batch", "cronjobs/finalizers"),
            rule("list watch delete", "core", "pods"),
        ),
        controller!(
            "daemon-set-controller",
            rule(READ, "extensions apps", "daemonsets"),
            rule("update", "extensions apps", "daemonsets/status"),
            rule("update", "extensions apps", "daemonsets/finalizers"),
            rule("list watch", "core", "nodes"),
            rule("list watch create delete patch", "core", "pods"),
            rule("create", "core", "pods/binding"),
            rule(RW_RS, "apps", "controllerrevisions"),
        ),
        controller!(
            "deployment-controller",
            rule("get list watch update", "extensions apps", "deployments"),
            rule("update", "extensions apps", "deployments/status"),
            rule("update", "extensions apps", "deployments/finalizers"),
            rule(RW_RS, "apps extensions", "replicasets"),
            rule("get list watch update", "core", "pods"),
        ),
        controller!(
            "disruption-controller",
            rule(READ, "extensions apps", "deployments"),
            rule(READ, "apps extensions", "replicasets"),
            rule(READ, "core", "replicationcontrollers"),
            rule(READ, "policy", "poddisruptionbudgets"),
            rule(READ, "apps", "statefulsets"),
            rule("update", "policy", "poddisruptionbudgets/status"),
            rule("patch update", "core", "pods/status"),
            rule("get", "*", "*/scale"),
        ),
        controller!(
            "endpoint-controller",
            rule(READ, "core", "services pods"),
            rule("create delete get list update watch", "core", "endpoints"),
            rule("create", "core", "endpoints/restricted"),
        ),
        controller!(
            "endpointslice-controller",
            rule(READ, "core", "services pods nodes"),
            rule("update", "core", "services/finalizers"),
            rule("create delete get list update watch", "discovery.k8s.io", "endpointslices"),
        ),
        controller!(
            "endpointslicemirroring-controller",
            rule(READ, "core", "services endpoints"),
            rule("update", "core", "services/finalizers"),
            rule("update", "core", "endpoints/finalizers"),
            rule("create delete get list update watch", "discovery.k8s.io", "endpointslices"),
        ),
        controller!(
            "expand-controller",
            rule("get list watch update patch", "core", "persistentvolumes"),
            rule("update patch", "core", "persistentvolumeclaims/status"),
            rule(READ, "core", "persistentvolumeclaims"),
            rule("get", "core", "services"),
        ),
        controller!(
            "ephemeral-volume-controller",
            rule(READ, "core", "pods"),
            rule("update", "core", "pods/finalizers"),
            rule("get list watch create", "core", "persistentvolumeclaims"),
        ),
        controller!(
            "generic-garbage-collector",
            rule("get list watch patch update delete", "*", "*"),
        ),
        controller!(
            "horizontal-pod-autoscaler",
            rule(READ, "autoscaling", "horizontalpodautoscalers"),
            rule("update", "autoscaling", "horizontalpodautoscalers/status"),
            rule("get update", "*", "*/scale"),
            rule("list watch", "core", "pods"),
            rule("list watch", "metrics.k8s.io", "pods"),
            rule(READ, "custom.metrics.k8s.io", "*"),
            rule(READ, "external.metrics.k8s.io", "*"),
        ),
        controller!(
            "job-controller",
            rule("get list watch update patch", "batch", "jobs"),
            rule("update", "batch", "jobs/status"),
            rule("update", "batch", "jobs/finalizers"),
            rule("list watch create delete patch", "core", "pods"),
        ),
        controller!(
            "node-controller",
            rule("get list watch update delete patch", "core", "nodes"),
            rule("patch update", "core", "nodes/status"),
            rule("patch update", "core", "pods/status"),
            rule("list watch get delete", "core", "pods"),
        ),
        controller!(
            "persistent-volume-binder",
            rule("get list watch update create delete", "core", "persistentvolumes"),
            rule("update", "core", "persistentvolumes/status"),
            rule("get list watch update", "core", "persistentvolumeclaims"),
            rule("update", "core", "persistentvolumeclaims/status"),
            rule("list watch get create delete", "core", "pods"),
            rule(READ, "storage.k8s.io", "storageclasses"),
            rule("list watch", "core", "nodes"),
            rule("watch", "core", "events"),
            rule("get", "core", "services"),
        ),
        controller!(
            "replicaset-controller",
            rule("get list watch update", "apps extensions", "replicasets"),
            rule("update", "apps extensions", "replicasets/status"),
            rule("update", "apps extensions", "replicasets/finalizers"),
            rule("list watch patch create delete", "core", "pods"),
        ),
        controller!(
            "replication-controller",
            rule("get list watch update", "core", "replicationcontrollers"),
            rule("update", "core", "replicationcontrollers/status"),
            rule("update", "core", "replicationcontrollers/finalizers"),
            rule("list watch patch create delete", "core", "pods"),
        ),
        controller!(
            "resourcequota-controller",
            rule("list watch", "*", "*"),
            rule("update", "core", "resourcequotas/status"),
        ),
        controller!(
            "route-controller",
            rule("list watch", "core", "nodes"),
            rule("patch", "core", "nodes/status"),
        ),
        controller!("service-account-controller", rule("create", "core", "serviceaccounts")),
        controller!(
            "service-controller",
            rule(READ, "core", "services"),
            rule("patch update", "core", "services/status"),
            rule("list watch", "core", "nodes"),
        ),
        controller!(
            "service-cidrs-controller",
            rule("get list watch patch update", "networking.k8s.io", "servicecidrs"),
            rule("patch update", "networking.k8s.io", "servicecidrs/finalizers"),
            rule("patch update", "networking.k8s.io", "servicecidrs/status"),
            rule(READ, "networking.k8s.io", "ipaddresses"),
        ),
        controller!(
            "statefulset-controller",
            rule("list watch", "core", "pods"),
            rule(READ, "apps", "statefulsets"),
            rule("update", "apps", "statefulsets/status"),
            rule("update", "apps", "statefulsets/finalizers"),
            rule("get create delete update patch", "core", "pods"),
            rule(RW_RS, "apps", "controllerrevisions"),
            rule("get create list watch", "core", "persistentvolumeclaims"),
            rule("update delete", "core", "persistentvolumeclaims"),
            rule("update", "core", "pods/finalizers"),
        ),
        controller!("ttl-controller", rule("update patch list watch", "core", "nodes")),
        controller!(
            "certificate-controller",
            rule("get list watch delete", "certificates.k8s.io", "certificatesigningrequests"),
            rule(
                "update",
                "certificates.k8s.io",
                "certificatesigningrequests/status certificatesigningrequests/approval",
            ),
            named(
                rule("approve", "certificates.k8s.io", "signers"),
                "kubernetes.io/kube-apiserver-client-kubelet",
            ),
            named(
                rule("sign", "certificates.k8s.io", "signers"),
                "kubernetes.io/legacy-unknown kubernetes.io/kube-apiserver-client kubernetes.io/kube-apiserver-client-kubelet kubernetes.io/kubelet-serving",
            ),
            rule("create", "authorization.k8s.io", "subjectaccessreviews"),
        ),
        controller!(
            "pvc-protection-controller",
            rule("get list watch update", "core", "persistentvolumeclaims"),
            rule("list watch get", "core", "pods"),
        ),
        controller!(
            "pv-protection-controller",
            rule("get list watch update", "core", "persistentvolumes"),
        ),
        controller!("ttl-after-finished-controller", rule("get list watch delete", "batch", "jobs")),
        controller!("root-ca-cert-publisher", rule("create update", "core", "configmaps")),
        controller!(
            "validatingadmissionpolicy-status-controller",
            rule(READ, "admissionregistration.k8s.io", "validatingadmissionpolicies"),
            rule(
                "get patch update",
                "admissionregistration.k8s.io",
                "validatingadmissionpolicies/status",
            ),
        ),
        controller!(
            "selinux-warning-controller",
            rule(READ, "core", "persistentvolumes"),
            rule(READ, "core", "persistentvolumeclaims"),
            rule(READ, "core", "pods"),
            rule(READ, "storage.k8s.io", "csidrivers"),
        ),
    ]
    .into_iter()
    .map(with_events)
    .collect();
    // Upstream gives these three no events rule.
    all.extend([
        controller!(
            "clusterrole-aggregation-controller",
            rule(
                "escalate get list watch update patch",
                "rbac.authorization.k8s.io",
                "clusterroles",
            ),
        ),
        controller!(
            "namespace-controller",
            rule("get list watch delete", "core", "namespaces"),
            rule("update", "core", "namespaces/finalize namespaces/status"),
            rule("get list watch delete deletecollection", "*", "*"),
        ),
        controller!(
            "pod-garbage-collector",
            rule("list watch delete", "core", "pods"),
            rule(READ, "core", "nodes"),
            rule("patch", "core", "pods/status"),
        ),
        controller!(
            "legacy-service-account-token-cleaner",
            named(
                rule("get", "core", "configmaps"),
                "kube-apiserver-legacy-service-account-token-tracking",
            ),
            rule("patch delete", "core", "secrets"),
        ),
    ]);
    all
}

pub fn roles() -> Vec<RoleSpec> {
    controllers()
        .into_iter()
        .map(|c| role(c.role, c.rules))
        .collect()
}

pub fn bindings() -> Vec<BindingSpec> {
    controllers()
        .into_iter()
        .map(|c| BindingSpec {
            name: c.role,
            role: c.role,
            subjects: c.subjects,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_controller_role_is_bound_to_its_service_account() {
        let roles = roles();
        let bindings = bindings();
        let mut names: Vec<&str> = roles.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), roles.len(), "role names are unique");
        assert_eq!(bindings.len(), roles.len());
        for b in &bindings {
            let sa = b.name.strip_prefix("system:controller:").expect("prefix");
            assert_eq!(b.role, b.name);
            assert_eq!(b.subjects, &[("ServiceAccount", sa, "kube-system")]);
        }
        let deployments = roles
            .iter()
            .find(|r| r.name == "system:controller:deployment-controller")
            .expect("deployment controller");
        assert!(deployments.rules.contains(&events()));
        let gc = roles
            .iter()
            .find(|r| r.name == "system:controller:pod-garbage-collector")
            .expect("pod GC");
        assert!(
            !gc.rules.contains(&events()),
            "upstream gives it no events rule"
        );
    }
}
