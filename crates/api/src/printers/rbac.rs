//! Role bindings and cluster role bindings. Roles and cluster roles have no printer
//! upstream and print as Name / Created At.

use jiff::Timestamp;
use serde_json::Value;

use super::cells::{age, arr, name, s};
use super::{AGE, Col, NAME, col, wide};

pub(super) const BINDING: &[Col] = &[
    NAME,
    col("Role", "string", "The role granted, as Kind/name."),
    AGE,
    wide(
        "Users",
        "string",
        "The users the binding grants the role to.",
    ),
    wide(
        "Groups",
        "string",
        "The groups the binding grants the role to.",
    ),
    wide(
        "ServiceAccounts",
        "string",
        "The service accounts the binding grants the role to, as namespace/name.",
    ),
];

pub(super) fn binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = &obj["roleRef"];
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in arr(&obj["subjects"]) {
        match s(&subject["kind"]) {
            "User" => users.push(s(&subject["name"]).to_string()),
            "Group" => groups.push(s(&subject["name"]).to_string()),
            "ServiceAccount" => accounts.push(format!(
                "{}/{}",
                s(&subject["namespace"]),
                s(&subject["name"])
            )),
            _ => {}
        }
    }
    vec![
        name(obj),
        format!("{}/{}", s(&role["kind"]), s(&role["name"])).into(),
        age(obj, now),
        users.join(", ").into(),
        groups.join(", ").into(),
        accounts.join(", ").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_cells() {
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        let b = json!({"metadata": {"name": "admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:masters"}, {"kind": "User", "name": "alice"},
                         {"kind": "User", "name": "bob"}, {"kind": "ServiceAccount", "namespace": "kube-system", "name": "ctl"}]});
        assert_eq!(
            binding(&b, now),
            [
                json!("admins"),
                json!("ClusterRole/cluster-admin"),
                json!("<unknown>"),
                json!("alice, bob"),
                json!("system:masters"),
                json!("kube-system/ctl")
            ]
        );
    }
}
