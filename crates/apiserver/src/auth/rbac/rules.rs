//! Whether a policy rule covers a request and whether a binding subject is a user, by
//! upstream's RBAC rules: `*` matches any verb, group, resource or name; a resource
//! `pods/log` matches that subresource, `*/log` it in any resource; an empty
//! `resourceNames` matches every name; a `nonResourceURLs` entry ending in `*` matches
//! paths with that prefix.

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};

use crate::auth::{Attributes, UserInfo};

const ALL: &str = "*";

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == ALL || v == want)
}

fn opt(list: &Option<Vec<String>>) -> &[String] {
    list.as_deref().unwrap_or_default()
}

/// Whether `rule` allows `attrs` (a resource or a non-resource request).
pub fn allows(rule: &PolicyRule, attrs: &Attributes) -> bool {
    if !has(&rule.verbs, &attrs.verb) {
        return false;
    }
    match &attrs.path {
        Some(path) => opt(&rule.non_resource_urls)
            .iter()
            .any(|u| url_matches(u, path)),
        None => {
            has(opt(&rule.api_groups), &attrs.group)
                && resource_matches(opt(&rule.resources), &attrs.resource, &attrs.subresource)
                && name_matches(opt(&rule.resource_names), &attrs.name)
        }
    }
}

fn resource_matches(resources: &[String], resource: &str, subresource: &str) -> bool {
    resources.iter().any(|r| {
        if r == ALL {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        // `resource/subresource` or `*/subresource`, compared without allocating.
        match r.split_once('/') {
            Some((res, sub)) => sub == subresource && (res == resource || res == ALL),
            None => false,
        }
    })
}

fn name_matches(names: &[String], name: &str) -> bool {
    names.is_empty() || names.iter().any(|n| n == name)
}

fn url_matches(rule: &str, path: &str) -> bool {
    if rule == ALL || rule == path {
        return true;
    }
    rule.strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

/// The user name of a service account.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Who a binding subject is, as the index keys it: a user name or a group name.
/// `binding_ns` is the namespace of a RoleBinding ("" for a ClusterRoleBinding),
/// which a ServiceAccount subject without a namespace defaults to. `None` for a
/// subject no request can match (an unknown kind, a namespace-less account).
pub fn subject_key(subject: &Subject, binding_ns: &str) -> Option<SubjectKey> {
    match subject.kind.as_str() {
        "User" => Some(SubjectKey::User(subject.name.clone())),
        "Group" => Some(SubjectKey::Group(subject.name.clone())),
        "ServiceAccount" => {
            let ns = subject
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            (!ns.is_empty()).then(|| SubjectKey::User(service_account_user(ns, &subject.name)))
        }
        _ => None,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SubjectKey {
    User(String),
    Group(String),
}

impl SubjectKey {
    pub fn matches(&self, user: &UserInfo) -> bool {
        match self {
            Self::User(u) => *u == user.username,
            Self::Group(g) => user.groups.iter().any(|x| x == g),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PolicyRule {
            verbs: v(verbs),
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            resource_names: (!names.is_empty()).then(|| v(names)),
            non_resource_urls: None,
        }
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "default".into(),
            name: name.into(),
            path: None,
            field_selector: Vec::new(),
        }
    }

    #[test]
    fn verbs_groups_and_resources() {
        let r = rule(&["get", "list"], &[""], &["pods"], &[]);
        assert!(allows(&r, &req("get", "", "pods", "", "a")));
        assert!(allows(&r, &req("list", "", "pods", "", "")));
        assert!(!allows(&r, &req("create", "", "pods", "", "")));
        assert!(!allows(&r, &req("get", "apps", "pods", "", "")));
        assert!(!allows(&r, &req("get", "", "services", "", "")));
        let star = rule(&["*"], &["*"], &["*"], &[]);
        assert!(allows(
            &star,
            &req("escalate", "rbac.authorization.k8s.io", "roles", "", "")
        ));
    }

    #[test]
    fn subresources_need_naming() {
        let pods = rule(&["get"], &[""], &["pods"], &[]);
        assert!(!allows(&pods, &req("get", "", "pods", "log", "a")));
        let log = rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(allows(&log, &req("get", "", "pods", "log", "a")));
        assert!(!allows(&log, &req("get", "", "pods", "", "a")));
        assert!(!allows(&log, &req("get", "", "pods", "exec", "a")));
        let any_status = rule(&["update"], &["*"], &["*/status"], &[]);
        assert!(allows(
            &any_status,
            &req("update", "apps", "deployments", "status", "d")
        ));
        assert!(!allows(
            &any_status,
            &req("update", "apps", "deployments", "scale", "d")
        ));
        assert!(!allows(
            &any_status,
            &req("update", "apps", "deployments", "", "d")
        ));
    }

    #[test]
    fn resource_names_limit_names() {
        let r = rule(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &["kube-scheduler"],
        );
        assert!(allows(
            &r,
            &req("get", "coordination.k8s.io", "leases", "", "kube-scheduler")
        ));
        assert!(!allows(
            &r,
            &req("get", "coordination.k8s.io", "leases", "", "other")
        ));
        // A list names nothing, so a rule with names does not cover it (upstream).
        assert!(!allows(
            &r,
            &req("list", "coordination.k8s.io", "leases", "", "")
        ));
    }

    #[test]
    fn non_resource_urls() {
        let r = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec!["/healthz".into(), "/apis/*".into()]),
            ..Default::default()
        };
        assert!(allows(&r, &Attributes::non_resource("get", "/healthz")));
        assert!(!allows(
            &r,
            &Attributes::non_resource("get", "/healthz/etcd")
        ));
        assert!(allows(
            &r,
            &Attributes::non_resource("get", "/apis/apps/v1")
        ));
        assert!(!allows(&r, &Attributes::non_resource("get", "/apis")));
        assert!(!allows(&r, &Attributes::non_resource("post", "/healthz")));
        // A resource rule never covers a path, nor a path rule a resource.
        assert!(!allows(
            &rule(&["*"], &["*"], &["*"], &[]),
            &Attributes::non_resource("get", "/x")
        ));
        assert!(!allows(&r, &req("get", "", "pods", "", "")));
    }

    #[test]
    fn subjects() {
        let sa = Subject {
            kind: "ServiceAccount".into(),
            name: "builder".into(),
            namespace: None,
            api_group: None,
        };
        assert_eq!(
            subject_key(&sa, "ci"),
            Some(SubjectKey::User("system:serviceaccount:ci:builder".into()))
        );
        assert_eq!(subject_key(&sa, ""), None);
        let group = Subject {
            kind: "Group".into(),
            name: "devs".into(),
            namespace: None,
            api_group: Some("rbac.authorization.k8s.io".into()),
        };
        let key = subject_key(&group, "").unwrap();
        assert!(key.matches(&UserInfo::new("x", vec!["devs".into()])));
        assert!(!key.matches(&UserInfo::new("devs", vec![])));
    }
}
