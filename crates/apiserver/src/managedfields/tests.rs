//! Field sets, comparisons, update records and apply.

use serde_json::{Value, json};

use super::apply::{Request, apply};
use super::set::show_path;
use super::*;

fn info(plural: &str) -> api::ResourceInfo {
    api::builtin::resources()
        .into_iter()
        .find(|r| r.plural == plural)
        .unwrap()
}

fn fields(obj: &Value, i: usize) -> &Value {
    &obj["metadata"]["managedFields"][i]["fieldsV1"]
}

fn deployment(replicas: i64, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx",
                    "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

#[test]
fn field_set_of_an_applied_configuration() {
    let d = info("deployments");
    let set = walk::field_set(
        &Schema::for_resource(&d),
        &strip(&deployment(3, json!({"a": "b"}))),
    );
    assert_eq!(
        set.to_json(),
        json!({
            "f:metadata": {"f:labels": {"f:a": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                            ".": {}, "f:containerPort": {}}}
                    }}}
                }
            }
        })
    );
}

#[test]
fn sets_of_scalars_and_atomic_lists() {
    let pods = info("pods");
    let obj = json!({"metadata": {"finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "c", "args": ["x", "y"]}], "tolerations": [{"key": "k"}]}});
    let set = walk::field_set(&Schema::for_resource(&pods), &obj);
    let j = set.to_json();
    assert_eq!(
        j["f:metadata"]["f:finalizers"],
        json!({"v:\"a\"": {}, "v:\"b\"": {}})
    );
    assert_eq!(j["f:spec"]["f:tolerations"], json!({}));
    assert_eq!(
        j["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:args"],
        json!({})
    );
    // Custom resources: every list is atomic.
    let set = walk::field_set(&Schema::untyped(), &obj);
    assert_eq!(set.to_json()["f:spec"]["f:containers"], json!({}));
}

#[test]
fn compare_finds_added_modified_removed() {
    let d = info("deployments");
    let schema = Schema::for_resource(&d);
    let a = strip(&deployment(1, json!({"x": "1", "y": "2"})));
    let mut b = a.clone();
    b["spec"]["replicas"] = json!(2);
    b["metadata"]["labels"] = json!({"x": "1", "z": "3"});
    b["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "d", "image": "busybox"}));
    let cmp = walk::compare(&schema, &a, &b);
    let show = |s: &FieldSet| s.iter().map(|p| show_path(p)).collect::<Vec<_>>();
    assert_eq!(show(&cmp.modified), [".spec.replicas"]);
    assert_eq!(show(&cmp.removed), [".metadata.labels.y"]);
    let added = show(&cmp.added);
    assert!(
        added.contains(&".metadata.labels.z".to_string()),
        "{added:?}"
    );
    assert!(
        added.contains(&".spec.template.spec.containers[name=\"d\"]".to_string()),
        "{added:?}"
    );
    assert!(
        added.contains(&".spec.template.spec.containers[name=\"d\"].image".to_string()),
        "{added:?}"
    );
}

#[test]
fn updates_take_fields_from_other_managers() {
    let d = info("deployments");
    let mut obj = deployment(1, json!({"app": "web"}));
    record_update(&d, None, &mut obj, "creator", "");
    let mf = &obj["metadata"]["managedFields"];
    assert_eq!(mf.as_array().unwrap().len(), 1);
    assert_eq!(mf[0]["manager"], "creator");
    assert_eq!(mf[0]["operation"], "Update");
    assert_eq!(mf[0]["apiVersion"], "apps/v1");
    assert_eq!(mf[0]["fieldsType"], "FieldsV1");
    assert_eq!(
        fields(&obj, 0)["f:metadata"]["f:labels"],
        json!({".": {}, "f:app": {}})
    );
    assert!(fields(&obj, 0)["f:metadata"].get("f:name").is_none());

    let old = obj.clone();
    obj["spec"]["replicas"] = json!(5);
    record_update(&d, Some(&old), &mut obj, "scaler", "scale");
    let mf = obj["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 2);
    let creator = mf.iter().find(|e| e["manager"] == "creator").unwrap();
    let scaler = mf.iter().find(|e| e["manager"] == "scaler").unwrap();
    assert!(creator["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert_eq!(scaler["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    assert_eq!(scaler["subresource"], "scale");

    // `[{}]` from the client clears managedFields; `[]` keeps the live ones.
    let old = obj.clone();
    obj["metadata"]["managedFields"] = json!([{}]);
    record_update(&d, Some(&old), &mut obj, "x", "");
    assert!(obj["metadata"].get("managedFields").is_none());
    let mut again = old.clone();
    again["metadata"]["managedFields"] = json!([]);
    record_update(&d, Some(&old), &mut again, "x", "");
    assert_eq!(
        again["metadata"]["managedFields"],
        old["metadata"]["managedFields"]
    );
}

fn req<'a>(info: &'a api::ResourceInfo, manager: &'a str, force: bool) -> Request<'a> {
    Request {
        info,
        manager,
        subresource: "",
        force,
    }
}

#[test]
fn apply_conflicts_force_and_prune() {
    let d = info("deployments");
    let config = deployment(3, json!({"app": "web", "tier": "front"}));
    let live = apply(&req(&d, "kubectl", false), None, &config)
        .unwrap()
        .unwrap();
    let mf = &live["metadata"]["managedFields"][0];
    assert_eq!(mf["operation"], "Apply");
    assert_eq!(mf["manager"], "kubectl");
    // Re-applying the same configuration changes nothing.
    assert!(
        apply(&req(&d, "kubectl", false), Some(&live), &config)
            .unwrap()
            .is_none()
    );

    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(&d, Some(&live), &mut scaled, "kubectl", "scale");
    let err = apply(&req(&d, "kubectl", false), Some(&scaled), &config).unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" using apps/v1: .spec.replicas"
    );
    let cause = &err.details.as_ref().unwrap()["causes"][0];
    assert_eq!(cause["reason"], "FieldManagerConflict");
    assert_eq!(cause["field"], ".spec.replicas");

    let forced = apply(&req(&d, "kubectl", true), Some(&scaled), &config)
        .unwrap()
        .unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let mf = forced["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(mf.len(), 1, "{mf:?}");

    // Dropping a label from the configuration removes it from the object.
    let smaller = deployment(3, json!({"app": "web"}));
    let pruned = apply(&req(&d, "kubectl", false), Some(&forced), &smaller)
        .unwrap()
        .unwrap();
    assert_eq!(pruned["metadata"]["labels"], json!({"app": "web"}));
    // Unless someone else owns it too.
    let other = apply(
        &req(&d, "other", false),
        Some(&forced),
        &json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"tier": "front"}}}),
    )
    .unwrap()
    .unwrap();
    let kept = apply(&req(&d, "kubectl", false), Some(&other), &smaller)
        .unwrap()
        .unwrap();
    assert_eq!(
        kept["metadata"]["labels"],
        json!({"app": "web", "tier": "front"})
    );
    // Shared ownership: the same value is no conflict.
    let mut conflicting = smaller.clone();
    conflicting["metadata"]["labels"]["tier"] = json!("back");
    let err = apply(&req(&d, "kubectl", false), Some(&other), &conflicting).unwrap_err();
    assert!(
        err.message
            .contains("conflict with \"other\": .metadata.labels.tier"),
        "{}",
        err.message
    );
}

#[test]
fn apply_removes_dropped_containers_and_empty_maps() {
    let d = info("deployments");
    let mut config = deployment(1, json!({"only": "x"}));
    config["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": "busybox"}));
    let live = apply(&req(&d, "m", false), None, &config).unwrap().unwrap();
    let mut next = deployment(1, json!(null));
    next["metadata"].as_object_mut().unwrap().remove("labels");
    let out = apply(&req(&d, "m", false), Some(&live), &next)
        .unwrap()
        .unwrap();
    assert!(out["metadata"].get("labels").is_none(), "{out}");
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
}

#[test]
fn client_side_apply_fields_may_be_taken_over_by_kubectl() {
    let d = info("deployments");
    let config = deployment(3, json!({"app": "web"}));
    let mut live = config.clone();
    let last = format!("{}\n", config);
    live["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": last});
    record_update(&d, None, &mut live, "kubectl-client-side-apply", "");
    let changed = deployment(4, json!({"app": "web"}));
    let out = apply(&req(&d, "kubectl", false), Some(&live), &changed)
        .unwrap()
        .unwrap();
    assert_eq!(out["spec"]["replicas"], 4);
    let la = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    assert!(la.contains("\"replicas\":4"), "{la}");
    // Another manager may not take them.
    let err = apply(&req(&d, "other", false), Some(&live), &changed).unwrap_err();
    assert!(
        err.message.contains("kubectl-client-side-apply"),
        "{}",
        err.message
    );
}

#[test]
fn manager_names_from_user_agents() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/abc").as_deref(),
        Some("kubectl")
    );
    assert_eq!(manager_from_user_agent("").as_deref(), None);
}
