//! The in-memory view of Roles, ClusterRoles and their bindings that the RBAC
//! authorizer reads on every request. Bindings are indexed by the user and group names
//! of their subjects, so a request looks at the bindings that name its user or one of
//! its groups and nothing else.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};

use super::rules::{self, SubjectKey};
use crate::auth::{Attributes, Decision, Rules, UserInfo};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum RoleKey {
    Cluster(String),
    /// A Role, in the binding's namespace.
    Namespaced(String),
}

#[derive(Debug)]
struct Binding {
    /// "" for a ClusterRoleBinding.
    namespace: String,
    role: RoleKey,
    subjects: Vec<SubjectKey>,
}

type RuleSet = Arc<Vec<PolicyRule>>;

#[derive(Default)]
pub struct Policy {
    cluster_roles: HashMap<String, RuleSet>,
    /// namespace → name → rules.
    roles: HashMap<String, HashMap<String, RuleSet>>,
    /// (namespace, name) → binding; namespace "" for ClusterRoleBindings.
    bindings: HashMap<(String, String), Arc<Binding>>,
    by_user: HashMap<String, Vec<Arc<Binding>>>,
    by_group: HashMap<String, Vec<Arc<Binding>>>,
}

impl Policy {
    pub fn set_cluster_role(&mut self, name: &str, rules: Vec<PolicyRule>) {
        self.cluster_roles.insert(name.to_string(), Arc::new(rules));
    }

    pub fn remove_cluster_role(&mut self, name: &str) {
        self.cluster_roles.remove(name);
    }

    pub fn set_role(&mut self, namespace: &str, name: &str, rules: Vec<PolicyRule>) {
        self.roles
            .entry(namespace.to_string())
            .or_default()
            .insert(name.to_string(), Arc::new(rules));
    }

    pub fn remove_role(&mut self, namespace: &str, name: &str) {
        if let Some(ns) = self.roles.get_mut(namespace) {
            ns.remove(name);
            if ns.is_empty() {
                self.roles.remove(namespace);
            }
        }
    }

    /// Drops every ClusterRole (before a full relist).
    pub fn clear_cluster_roles(&mut self) {
        self.cluster_roles.clear();
    }

    pub fn clear_roles(&mut self) {
        self.roles.clear();
    }

    /// Drops every RoleBinding (`cluster` false) or ClusterRoleBinding (`cluster` true).
    pub fn clear_bindings(&mut self, cluster: bool) {
        let keys: Vec<_> = self
            .bindings
            .keys()
            .filter(|(ns, _)| ns.is_empty() == cluster)
            .cloned()
            .collect();
        for (ns, name) in keys {
            self.remove_binding(&ns, &name);
        }
    }

    /// Adds or replaces a binding; `namespace` is "" for a ClusterRoleBinding.
    pub fn set_binding(
        &mut self,
        namespace: &str,
        name: &str,
        role_ref: &RoleRef,
        subjects: &[Subject],
    ) {
        self.remove_binding(namespace, name);
        let role = match role_ref.kind.as_str() {
            "ClusterRole" => RoleKey::Cluster(role_ref.name.clone()),
            // A ClusterRoleBinding can only name ClusterRoles (validation).
            "Role" if !namespace.is_empty() => RoleKey::Namespaced(role_ref.name.clone()),
            _ => return,
        };
        let mut keys: Vec<SubjectKey> = subjects
            .iter()
            .filter_map(|s| rules::subject_key(s, namespace))
            .collect();
        keys.dedup();
        let b = Arc::new(Binding {
            namespace: namespace.to_string(),
            role,
            subjects: keys,
        });
        for k in &b.subjects {
            let (map, key) = match k {
                SubjectKey::User(u) => (&mut self.by_user, u),
                SubjectKey::Group(g) => (&mut self.by_group, g),
            };
            let list = map.entry(key.clone()).or_default();
            if !list.iter().any(|x| Arc::ptr_eq(x, &b)) {
                list.push(b.clone());
            }
        }
        self.bindings
            .insert((namespace.to_string(), name.to_string()), b);
    }

    pub fn remove_binding(&mut self, namespace: &str, name: &str) {
        let Some(old) = self
            .bindings
            .remove(&(namespace.to_string(), name.to_string()))
        else {
            return;
        };
        for k in &old.subjects {
            let (map, key) = match k {
                SubjectKey::User(u) => (&mut self.by_user, u),
                SubjectKey::Group(g) => (&mut self.by_group, g),
            };
            if let Some(list) = map.get_mut(key) {
                list.retain(|x| !Arc::ptr_eq(x, &old));
                if list.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    /// The bindings naming `user` or one of its groups that apply in `namespace`
    /// ("" for cluster-scoped and non-resource requests: ClusterRoleBindings only).
    fn bindings_for<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Binding>> + 'a {
        let by_user = self.by_user.get(&user.username).into_iter().flatten();
        let by_group = user
            .groups
            .iter()
            .filter_map(|g| self.by_group.get(g))
            .flatten();
        by_user.chain(by_group).filter(move |b| {
            b.namespace.is_empty() || (!namespace.is_empty() && b.namespace == namespace)
        })
    }

    /// The rules of a binding's role, or the error upstream reports for a missing one.
    fn rules_of(&self, b: &Binding) -> Result<&RuleSet, String> {
        match &b.role {
            RoleKey::Cluster(name) => self
                .cluster_roles
                .get(name)
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {name:?} not found")),
            RoleKey::Namespaced(name) => self
                .roles
                .get(&b.namespace)
                .and_then(|ns| ns.get(name))
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io {name:?} not found")),
        }
    }

    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision {
        let namespace = if attrs.is_resource_request() {
            attrs.namespace.as_str()
        } else {
            ""
        };
        let mut errors = Vec::new();
        for b in self.bindings_for(user, namespace) {
            match self.rules_of(b) {
                Ok(rules) if rules.iter().any(|r| rules::allows(r, attrs)) => {
                    return Decision::Allow;
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        Decision::NoOpinion(match errors.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", errors[0]),
            _ => format!("RBAC: [{}]", errors.join(", ")),
        })
    }

    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Rules {
        let mut out = Rules::default();
        let mut seen: Vec<*const Binding> = Vec::new();
        for b in self.bindings_for(user, namespace) {
            if seen.contains(&Arc::as_ptr(b)) {
                continue;
            }
            seen.push(Arc::as_ptr(b));
            match self.rules_of(b) {
                Ok(rules) => out.rules.extend(rules.iter().cloned()),
                Err(e) => {
                    out.incomplete = true;
                    out.errors.push(e);
                }
            }
        }
        out
    }

    /// How many bindings the policy holds.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(kind: &str, name: &str, ns: Option<&str>) -> Subject {
        Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: ns.map(str::to_string),
            api_group: None,
        }
    }

    fn role_ref(kind: &str, name: &str) -> RoleRef {
        RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn read_pods() -> Vec<PolicyRule> {
        vec![PolicyRule {
            verbs: vec!["get".into(), "list".into()],
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["pods".into()]),
            ..Default::default()
        }]
    }

    fn list_pods(ns: &str) -> Attributes {
        Attributes {
            verb: "list".into(),
            resource: "pods".into(),
            namespace: ns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn role_bindings_apply_in_their_namespace_only() {
        let mut p = Policy::default();
        p.set_cluster_role("view", read_pods());
        p.set_binding(
            "dev",
            "alice-view",
            &role_ref("ClusterRole", "view"),
            &[subject("User", "alice", None)],
        );
        let alice = UserInfo::new("alice", vec![]);
        assert_eq!(p.authorize(&alice, &list_pods("dev")), Decision::Allow);
        assert_eq!(
            p.authorize(&alice, &list_pods("prod")),
            Decision::NoOpinion(String::new())
        );
        assert_eq!(
            p.authorize(&alice, &list_pods("")),
            Decision::NoOpinion(String::new())
        );
        p.remove_binding("dev", "alice-view");
        assert_eq!(
            p.authorize(&alice, &list_pods("dev")),
            Decision::NoOpinion(String::new())
        );
        assert_eq!(p.binding_count(), 0);
    }

    #[test]
    fn groups_service_accounts_and_missing_roles() {
        let mut p = Policy::default();
        p.set_role("ci", "reader", read_pods());
        p.set_binding(
            "ci",
            "b",
            &role_ref("Role", "reader"),
            &[
                subject("ServiceAccount", "builder", None),
                subject("Group", "devs", None),
            ],
        );
        let sa = UserInfo::new(
            "system:serviceaccount:ci:builder",
            vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:ci".into(),
            ],
        );
        assert_eq!(p.authorize(&sa, &list_pods("ci")), Decision::Allow);
        let dev = UserInfo::new("bob", vec!["devs".into()]);
        assert_eq!(p.authorize(&dev, &list_pods("ci")), Decision::Allow);
        p.remove_role("ci", "reader");
        assert_eq!(
            p.authorize(&dev, &list_pods("ci")),
            Decision::NoOpinion("RBAC: role.rbac.authorization.k8s.io \"reader\" not found".into())
        );
        let rules = p.rules_for(&dev, "ci");
        assert!(rules.incomplete);
        // Replacing a binding replaces its subjects in the index.
        p.set_role("ci", "reader", read_pods());
        p.set_binding(
            "ci",
            "b",
            &role_ref("Role", "reader"),
            &[subject("User", "carol", None)],
        );
        assert_eq!(
            p.authorize(&dev, &list_pods("ci")),
            Decision::NoOpinion(String::new())
        );
        assert_eq!(p.binding_count(), 1);
        p.clear_bindings(false);
        assert_eq!(p.binding_count(), 0);
    }

    #[test]
    fn cluster_role_bindings_cover_every_namespace_and_paths() {
        let mut p = Policy::default();
        p.set_cluster_role(
            "public",
            vec![PolicyRule {
                verbs: vec!["get".into()],
                non_resource_urls: Some(vec!["/healthz".into()]),
                ..Default::default()
            }],
        );
        p.set_binding(
            "",
            "public",
            &role_ref("ClusterRole", "public"),
            &[subject("Group", "system:unauthenticated", None)],
        );
        let anon = UserInfo::anonymous();
        assert_eq!(
            p.authorize(&anon, &Attributes::non_resource("get", "/healthz")),
            Decision::Allow
        );
        assert_eq!(p.rules_for(&anon, "any").rules.len(), 1);
    }
}
