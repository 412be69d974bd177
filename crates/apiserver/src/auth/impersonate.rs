//! Impersonation (`kubectl --as`, `--as-group`): a request carrying `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` or `Impersonate-Extra-<key>` headers acts as
//! that user, once the caller is authorized to `impersonate` each of them (users,
//! groups, serviceaccounts, uids, userextras), as upstream's impersonation filter.

use http::HeaderMap;

use super::rbac::rules::service_account_user;
use super::{Attributes, Authorizer, Decision, UserInfo, forbidden};
use crate::error::ApiError;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The user the request acts as: `user` itself when it asks for no impersonation.
pub fn apply(
    authorizer: &dyn Authorizer,
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    // Nearly every request impersonates no one: one pass over the names says so.
    if !headers
        .keys()
        .any(|k| k.as_str().starts_with("impersonate-"))
    {
        return Ok(user);
    }
    let username = values(headers, USER).next();
    let groups: Vec<String> = values(headers, GROUP).collect();
    let uid = values(headers, UID).next();
    let extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix(EXTRA_PREFIX)?;
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            Some((key, v.to_str().ok()?.to_string()))
        })
        .collect();
    let Some(username) = username else {
        if groups.is_empty() && extras.is_empty() && uid.is_none() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(format!(
            "requested {} without impersonating a user",
            describe(&groups, &extras, uid.as_deref())
        )));
    };

    let check = |attrs: Attributes| -> Result<(), ApiError> {
        match authorizer.authorize(&user, &attrs) {
            Decision::Allow => Ok(()),
            Decision::Deny(r) | Decision::NoOpinion(r) => Err(forbidden(&user, &attrs, &r)),
        }
    };
    let impersonate = |group: &str, resource: &str, namespace: &str, name: &str| Attributes {
        verb: "impersonate".into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    };

    let mut new_groups = groups.clone();
    let service_account = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'));
    match service_account {
        Some((ns, name)) => {
            check(impersonate("", "serviceaccounts", ns, name))?;
            // A service account's groups follow from its namespace.
            if groups.is_empty() {
                new_groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
            debug_assert_eq!(service_account_user(ns, name), username);
        }
        None => check(impersonate("", "users", "", &username))?,
    }
    for g in &groups {
        check(impersonate("", "groups", "", g))?;
    }
    if let Some(uid) = &uid {
        check(impersonate("authentication.k8s.io", "uids", "", uid))?;
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (key, value) in extras {
        let mut attrs = impersonate("authentication.k8s.io", "userextras", "", &value);
        attrs.subresource = key.clone();
        check(attrs)?;
        extra.entry(key).or_default().push(value);
    }

    // As upstream: the impersonated user is authenticated (or not) by its groups.
    let (add, skip) = if username == "system:anonymous" {
        ("system:unauthenticated", "system:unauthenticated")
    } else {
        ("system:authenticated", "system:unauthenticated")
    };
    if !new_groups.iter().any(|g| g == add || g == skip) {
        new_groups.push(add.into());
    }
    Ok(UserInfo {
        username,
        uid: uid.unwrap_or_default(),
        groups: new_groups,
        extra,
    })
}

fn describe(groups: &[String], extras: &[(String, String)], uid: Option<&str>) -> String {
    let mut parts: Vec<String> = groups.iter().map(|g| format!("group {g:?}")).collect();
    parts.extend(extras.iter().map(|(k, v)| format!("extra {k}={v}")));
    parts.extend(uid.map(|u| format!("uid {u:?}")));
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Rules;

    /// Allows impersonating the user "bob" and the group "devs" only.
    struct OnlyBob;

    impl Authorizer for OnlyBob {
        fn authorize(&self, _: &UserInfo, a: &Attributes) -> Decision {
            let ok = a.verb == "impersonate"
                && ((a.resource == "users" && a.name == "bob")
                    || (a.resource == "groups" && a.name == "devs"));
            if ok {
                Decision::Allow
            } else {
                Decision::NoOpinion(String::new())
            }
        }

        fn rules_for(&self, _: &UserInfo, _: &str) -> Option<Rules> {
            None
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn impersonation_is_authorized_per_user_and_group() {
        let alice = UserInfo::new("alice", vec!["system:authenticated".into()]);
        let same = apply(&OnlyBob, alice.clone(), &HeaderMap::new()).unwrap();
        assert_eq!(same, alice);
        let bob = apply(
            &OnlyBob,
            alice.clone(),
            &headers(&[("Impersonate-User", "bob")]),
        )
        .unwrap();
        assert_eq!(bob.username, "bob");
        assert_eq!(bob.groups, vec!["system:authenticated".to_string()]);
        let with_group = apply(
            &OnlyBob,
            alice.clone(),
            &headers(&[("Impersonate-User", "bob"), ("Impersonate-Group", "devs")]),
        )
        .unwrap();
        assert_eq!(
            with_group.groups,
            vec!["devs".to_string(), "system:authenticated".into()]
        );
        let err = apply(
            &OnlyBob,
            alice.clone(),
            &headers(&[("Impersonate-User", "carol")]),
        )
        .unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"users "carol" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#
        );
        let err = apply(&OnlyBob, alice, &headers(&[("Impersonate-Group", "devs")])).unwrap_err();
        assert_eq!(err.code, 400);
    }
}
