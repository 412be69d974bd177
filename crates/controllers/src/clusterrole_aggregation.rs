//! ClusterRole aggregation, as upstream's `clusterrole-aggregation` controller: the
//! rules of a ClusterRole with an `aggregationRule` are the rules of every other
//! ClusterRole its `clusterRoleSelectors` match (in name order, duplicates dropped),
//! rewritten whenever a ClusterRole changes. `admin`, `edit` and `view` are built this
//! way from the roles labelled `rbac.authorization.k8s.io/aggregate-to-<role>`.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::{WatchStreamExt, reflector, watcher};

/// Runs until dropped.
pub async fn run(client: kube::Client) {
    let api: Api<ClusterRole> = Api::all(client);
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .boxed();
    let mut synced = false;
    while let Some(ev) = events.next().await {
        match ev {
            Ok(watcher::Event::InitDone) => synced = true,
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "ClusterRole watch error");
                continue;
            }
        }
        if !synced {
            continue;
        }
        let roles: Vec<ClusterRole> = reader.state().iter().map(|r| (**r).clone()).collect();
        for (name, rules) in changes(&roles) {
            let patch = serde_json::json!({"rules": rules});
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(clusterrole = %name, error = %e, "aggregating ClusterRole rules failed");
            }
        }
    }
}

/// The aggregated roles whose rules are not what their selectors gather, with the
/// rules they should have.
pub fn changes(roles: &[ClusterRole]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut sorted: Vec<&ClusterRole> = roles.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for role in &sorted {
        let Some(rule) = &role.aggregation_rule else {
            continue;
        };
        let name = role.metadata.name.clone().unwrap_or_default();
        let mut want: Vec<PolicyRule> = Vec::new();
        for sel in rule.cluster_role_selectors.iter().flatten() {
            let Ok(selector) = Selector::try_from(sel.clone()) else {
                continue;
            };
            for other in &sorted {
                if other.metadata.name.as_deref() == Some(name.as_str())
                    || !selector.matches(other.metadata.labels.as_ref().unwrap_or(&empty))
                {
                    continue;
                }
                for r in other.rules.iter().flatten() {
                    if !want.contains(r) {
                        want.push(r.clone());
                    }
                }
            }
        }
        if role.rules.as_deref().unwrap_or_default() != want.as_slice() {
            out.push((name, want));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn role(name: &str, labels: &[(&str, &str)], rules: &[&str]) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            rules: Some(
                rules
                    .iter()
                    .map(|r| PolicyRule {
                        verbs: vec!["get".into()],
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec![r.to_string()]),
                        ..Default::default()
                    })
                    .collect(),
            ),
            aggregation_rule: None,
        }
    }

    fn aggregated(name: &str, label: &str, rules: &[&str]) -> ClusterRole {
        let mut r = role(name, &[], rules);
        r.aggregation_rule = Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some([(label.to_string(), "true".to_string())].into()),
                ..Default::default()
            }]),
        });
        r
    }

    #[test]
    fn gathers_matching_roles_in_name_order_without_duplicates() {
        let label = "rbac.authorization.k8s.io/aggregate-to-view";
        let roles = vec![
            aggregated("view", label, &[]),
            role("z-extra", &[(label, "true")], &["widgets", "pods"]),
            role("a-base", &[(label, "true")], &["pods"]),
            role("unrelated", &[], &["secrets"]),
        ];
        let changes = changes(&roles);
        assert_eq!(changes.len(), 1);
        let (name, rules) = &changes[0];
        assert_eq!(name, "view");
        let resources: Vec<&str> = rules
            .iter()
            .map(|r| r.resources.as_ref().unwrap()[0].as_str())
            .collect();
        assert_eq!(resources, vec!["pods", "widgets"]);
    }

    #[test]
    fn up_to_date_roles_are_left_alone() {
        let label = "rbac.authorization.k8s.io/aggregate-to-edit";
        let roles = vec![
            aggregated("edit", label, &["pods"]),
            role("a", &[(label, "true")], &["pods"]),
        ];
        assert!(changes(&roles).is_empty());
    }
}
