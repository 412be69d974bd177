//! Creating the default policy at start, as upstream's `rbac/bootstrap-roles`
//! post-start hook: every bootstrap role and binding missing is created (labelled
//! `kubernetes.io/bootstrapping: rbac-defaults`, annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"`); one that exists and still
//! carries `autoupdate: "true"` gets back the rules or subjects it lacks (extra ones
//! are kept); one an administrator set to `autoupdate: "false"` is left alone.
//! k8rs' own bindings also lose the subjects an earlier k8rs gave them and this one
//! no longer does (`roles::retired_subjects`), and the bindings it no longer has
//! (`roles::retired_cluster_role_bindings`) go, so an upgrade takes rights away too.

mod controller_roles;
pub mod roles;
mod rule_sets;

use serde_json::{Value, json};

use super::GROUP;
use crate::error::{ApiError, Result};
use crate::registry::{Context, Registry, UpdateMode};
use roles::{AGGREGATE_LABEL_PREFIX, BindingSpec, RoleSpec};

pub const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

fn metadata(name: &str, ns: Option<&str>, extra: &[(&str, &str)]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for (k, v) in extra {
        labels[*k] = json!(v);
    }
    let mut m = json!({"name": name, "labels": labels, "annotations": {AUTOUPDATE: "true"}});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

fn role_object(spec: &RoleSpec, ns: Option<&str>) -> Value {
    let kind = if ns.is_some() { "Role" } else { "ClusterRole" };
    let mut obj = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata(spec.name, ns, spec.labels),
        "rules": spec.rules,
    });
    if let Some(to) = spec.aggregates {
        obj["aggregationRule"] = json!({"clusterRoleSelectors": [
            {"matchLabels": {format!("{AGGREGATE_LABEL_PREFIX}{to}"): "true"}}
        ]});
    }
    obj
}

fn subject((kind, name, ns): &(&str, &str, &str)) -> Value {
    if *kind == "ServiceAccount" {
        json!({"kind": kind, "name": name, "namespace": ns})
    } else {
        json!({"kind": kind, "name": name, "apiGroup": GROUP})
    }
}

fn binding_object(spec: &BindingSpec, ns: Option<&str>, role_kind: &str) -> Value {
    let kind = if ns.is_some() {
        "RoleBinding"
    } else {
        "ClusterRoleBinding"
    };
    let subjects: Vec<Value> = spec.subjects.iter().map(subject).collect();
    let mut obj = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata(spec.name, ns, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": spec.role},
    });
    if !subjects.is_empty() {
        obj["subjects"] = json!(subjects);
    }
    obj
}

/// Creates or completes the bootstrap policy.
pub async fn ensure(registry: &Registry) -> Result<()> {
    for spec in roles::cluster_roles() {
        // An aggregated role's rules are the aggregation controller's to keep.
        let field = if spec.aggregates.is_some() {
            None
        } else {
            Some("rules")
        };
        ensure_one(
            registry,
            "clusterroles",
            None,
            role_object(&spec, None),
            field,
            &[],
        )
        .await?;
    }
    for (ns, spec) in roles::roles() {
        ensure_one(
            registry,
            "roles",
            Some(ns),
            role_object(&spec, Some(ns)),
            Some("rules"),
            &[],
        )
        .await?;
    }
    let retired = |ns: Option<&str>, name: &str| -> Vec<Value> {
        roles::retired_subjects()
            .iter()
            .filter(|(n, b, _)| *n == ns && *b == name)
            .map(|(_, _, s)| subject(s))
            .collect()
    };
    for spec in roles::cluster_role_bindings() {
        let obj = binding_object(&spec, None, "ClusterRole");
        let old = retired(None, spec.name);
        ensure_one(
            registry,
            "clusterrolebindings",
            None,
            obj,
            Some("subjects"),
            &old,
        )
        .await?;
    }
    for name in roles::retired_cluster_role_bindings() {
        retire_binding(registry, name).await?;
    }
    for (ns, spec) in roles::role_bindings() {
        let obj = binding_object(&spec, Some(ns), "Role");
        let old = retired(Some(ns), spec.name);
        ensure_one(
            registry,
            "rolebindings",
            Some(ns),
            obj,
            Some("subjects"),
            &old,
        )
        .await?;
    }
    Ok(())
}

/// Creates `want` if missing; else, when it may be updated, adds the entries of
/// `field` (rules or subjects) it lacks and drops the `retired` ones.
async fn ensure_one(
    registry: &Registry,
    plural: &str,
    ns: Option<&str>,
    want: Value,
    field: Option<&str>,
    retired: &[Value],
) -> Result<()> {
    let info = registry
        .resources
        .get(GROUP, "v1", plural)
        .expect("RBAC resources are built in");
    let name = api::meta::name(&want).unwrap_or_default().to_string();
    let ctx = Context::system();
    let Some(cur) = registry.try_get(&info, ns, &name).await? else {
        return match registry.create(&info, ns, want, &ctx).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        };
    };
    let Some(field) = field else { return Ok(()) };
    let stale = |cur: &Value| {
        cur[field]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| retired.contains(i)))
    };
    if !autoupdate(&cur) || (missing(&cur[field], &want[field]).is_empty() && !stale(&cur)) {
        return Ok(());
    }
    tracing::info!(plural, name, "updating bootstrap {field}");
    registry
        .guaranteed_update(&info, ns, &name, UpdateMode::Main, &ctx, |cur| {
            let mut next = cur.clone();
            let mut items = cur[field].as_array().cloned().unwrap_or_default();
            items.retain(|i| !retired.contains(i));
            items.extend(missing(&cur[field], &want[field]));
            next[field] = json!(items);
            Ok::<_, ApiError>(next)
        })
        .await?;
    Ok(())
}

/// Deletes a ClusterRoleBinding an earlier k8rs created, unless it is gone or an
/// administrator owns it now.
async fn retire_binding(registry: &Registry, name: &str) -> Result<()> {
    let info = registry
        .resources
        .get(GROUP, "v1", "clusterrolebindings")
        .expect("RBAC resources are built in");
    let ctx = Context::system();
    match registry.try_get(&info, None, name).await? {
        Some(cur) if autoupdate(&cur) => {}
        _ => return Ok(()),
    }
    tracing::info!(name, "deleting a retired bootstrap ClusterRoleBinding");
    let opts = crate::registry::DeleteOptions::default();
    match registry.delete(&info, None, name, &opts, &ctx).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

fn autoupdate(obj: &Value) -> bool {
    // Upstream treats a missing annotation as "true".
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE))
        .and_then(Value::as_str)
        .is_none_or(|v| v == "true")
}

/// The entries of `want` not in `have`.
fn missing(have: &Value, want: &Value) -> Vec<Value> {
    let have = have.as_array().map(Vec::as_slice).unwrap_or_default();
    want.as_array()
        .into_iter()
        .flatten()
        .filter(|w| !have.contains(w))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_carry_upstream_labels_and_aggregation() {
        let view = roles::cluster_roles()
            .into_iter()
            .find(|r| r.name == "view")
            .unwrap();
        let obj = role_object(&view, None);
        assert_eq!(
            obj["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert_eq!(
            obj["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
            "true"
        );
        assert_eq!(obj["metadata"]["annotations"][AUTOUPDATE], "true");
        assert_eq!(
            obj["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-view"],
            "true"
        );
        let b = roles::cluster_role_bindings()
            .into_iter()
            .find(|b| b.name == "system:node")
            .unwrap();
        assert!(
            binding_object(&b, None, "ClusterRole")
                .get("subjects")
                .is_none()
        );
    }

    /// An upgrade deletes the bindings k8rs no longer has, unless an administrator
    /// took one over.
    #[tokio::test]
    async fn retired_bindings_go_unless_taken_over() {
        let dir = tempfile::tempdir().expect("dir");
        let store: std::sync::Arc<dyn store::Store> = std::sync::Arc::new(
            store::sqlite::SqliteStore::open(dir.path().join("db")).expect("store"),
        );
        let registry = Registry::new(
            store,
            crate::registry::Resources::new(api::builtin::resources()),
            Default::default(),
        );
        let info = registry
            .resources
            .get(GROUP, "v1", "clusterrolebindings")
            .unwrap();
        let name = roles::retired_cluster_role_bindings()[0];
        let spec = BindingSpec {
            name,
            role: "system:node-proxier",
            subjects: &[("Group", "system:nodes", "")],
        };
        let ctx = Context::system();
        for (autoupdate, kept) in [("true", false), ("false", true)] {
            let mut obj = binding_object(&spec, None, "ClusterRole");
            obj["metadata"]["annotations"][AUTOUPDATE] = json!(autoupdate);
            registry
                .create(&info, None, obj, &ctx)
                .await
                .expect("create");
            retire_binding(&registry, name).await.expect("retire");
            let found = registry.try_get(&info, None, name).await.expect("get");
            assert_eq!(found.is_some(), kept, "autoupdate {autoupdate}");
        }
        retire_binding(&registry, "absent").await.expect("absent");
    }

    #[test]
    fn missing_entries_and_autoupdate() {
        assert_eq!(missing(&json!([1, 2]), &json!([2, 3])), vec![json!(3)]);
        assert!(autoupdate(&json!({"metadata": {}})));
        assert!(!autoupdate(
            &json!({"metadata": {"annotations": {AUTOUPDATE: "false"}}})
        ));
    }
}
