//! Server-side apply and managedFields driven by the real kubectl: field ownership
//! shown with `--show-managed-fields`, conflicts with `kubectl scale`, forcing,
//! removal of fields no longer applied, and the upgrade from client-side apply.

use serde_json::Value;
use testkit::TestServer;

fn deployment(name: &str, replicas: u32, labels: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
{labels}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports:
        - containerPort: 80
"#
    )
}

fn run(s: &TestServer, args: &[&str], input: &str) -> (bool, String, String) {
    let out = s.stdin(args, input);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply_ok(s: &TestServer, extra: &[&str], manifest: &str) {
    let mut args = vec!["apply", "--server-side", "-f", "-"];
    args.extend_from_slice(extra);
    let (ok, out, err) = run(s, &args, manifest);
    assert!(ok, "apply {extra:?}: {out}{err}");
}

fn managed_fields(s: &TestServer, name: &str) -> Vec<Value> {
    let out = s.ok(&[
        "get",
        "deployment",
        name,
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let obj: Value = serde_json::from_str(&out).unwrap();
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(mf: &'a [Value], manager: &str, operation: &str) -> Option<&'a Value> {
    mf.iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

#[test]
fn apply_owns_fields_conflicts_with_scale_and_prunes() {
    let s = TestServer::start();
    let manifest = deployment("web", 3, "    tier: front");
    apply_ok(&s, &[], &manifest);

    let yaml = s.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(yaml.contains("manager: kubectl"), "{yaml}");
    assert!(yaml.contains("operation: Apply"), "{yaml}");
    assert!(yaml.contains("f:spec:"), "{yaml}");
    assert!(yaml.contains("fieldsType: FieldsV1"), "{yaml}");
    let mf = managed_fields(&s, "web");
    let applied = entry(&mf, "kubectl", "Apply").expect("an Apply entry");
    let f = &applied["fieldsV1"];
    assert_eq!(f["f:spec"]["f:replicas"], serde_json::json!({}), "{f}");
    assert!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["."]
            .is_object(),
        "{f}"
    );
    assert!(f["f:metadata"].get("f:name").is_none(), "{f}");
    // Without --show-managed-fields kubectl hides them.
    let plain = s.ok(&["get", "deploy", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // kubectl scale owns spec.replicas through the scale subresource.
    s.ok(&["scale", "deployment", "web", "--replicas=5"]);
    let mf = managed_fields(&s, "web");
    let scaler = mf
        .iter()
        .find(|e| e["operation"] == "Update" && e["subresource"] == "scale")
        .unwrap_or_else(|| panic!("{mf:?}"));
    assert_eq!(
        scaler["fieldsV1"]["f:spec"]["f:replicas"],
        serde_json::json!({})
    );
    let applied = entry(&mf, "kubectl", "Apply").unwrap();
    assert!(applied["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    // Re-applying replicas 3 conflicts.
    let (ok, _, err) = run(&s, &["apply", "--server-side", "-f", "-"], &manifest);
    assert!(!ok, "apply should conflict");
    assert!(err.contains("Apply failed with 1 conflict"), "{err}");
    assert!(err.contains(".spec.replicas"), "{err}");
    assert!(err.contains("conflict with \"kubectl"), "{err}");
    let replicas = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "5");

    // --force-conflicts takes the field back.
    apply_ok(&s, &["--force-conflicts"], &manifest);
    let replicas = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "3");
    let mf = managed_fields(&s, "web");
    let applied = entry(&mf, "kubectl", "Apply").unwrap();
    assert_eq!(
        applied["fieldsV1"]["f:spec"]["f:replicas"],
        serde_json::json!({})
    );
    assert!(
        !mf.iter().any(|e| e["subresource"] == "scale"),
        "the scaler lost its only field: {mf:?}"
    );

    // A label no longer applied is removed.
    let labels = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]);
    assert!(labels.contains("tier"), "{labels}");
    apply_ok(&s, &[], &deployment("web", 3, ""));
    let labels = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]);
    assert!(!labels.contains("tier"), "{labels}");
    assert!(labels.contains("app"), "{labels}");

    // A label another manager also set stays.
    s.ok(&["label", "deploy", "web", "owner=ops"]);
    apply_ok(&s, &[], &deployment("web", 3, "    owner: ops"));
    apply_ok(&s, &[], &deployment("web", 3, ""));
    let labels = s.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]);
    assert!(labels.contains("owner"), "{labels}");
}

#[test]
fn updates_record_their_managers() {
    let s = TestServer::start();
    let out = s.stdin(&["create", "-f", "-"], &deployment("made", 1, ""));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mf = managed_fields(&s, "made");
    let created = entry(&mf, "kubectl-create", "Update").unwrap_or_else(|| panic!("{mf:?}"));
    assert_eq!(created["apiVersion"], "apps/v1");
    let time = created["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 20, "{time}");
    // Defaults belong to the creator, as upstream.
    assert!(
        created["fieldsV1"]["f:spec"]
            .get("f:revisionHistoryLimit")
            .is_some()
    );

    s.ok(&["label", "deploy", "made", "extra=yes"]);
    let mf = managed_fields(&s, "made");
    let labeler = mf
        .iter()
        .find(|e| e["manager"] != "kubectl-create" && e["operation"] == "Update")
        .unwrap_or_else(|| panic!("{mf:?}"));
    assert!(
        labeler["fieldsV1"]["f:metadata"]["f:labels"]
            .get("f:extra")
            .is_some()
    );

    // An explicit ?fieldManager= names the manager.
    s.ok(&[
        "annotate",
        "deploy",
        "made",
        "note=x",
        "--field-manager=my-tool",
    ]);
    let mf = managed_fields(&s, "made");
    assert!(entry(&mf, "my-tool", "Update").is_some(), "{mf:?}");
}

#[test]
fn client_side_apply_upgrades_to_server_side() {
    let s = TestServer::start();
    let manifest = deployment("csa", 2, "");
    for _ in 0..2 {
        let (ok, out, err) = run(&s, &["apply", "-f", "-"], &manifest);
        assert!(ok, "{out}{err}");
    }
    let mf = managed_fields(&s, "csa");
    assert!(
        entry(&mf, "kubectl-client-side-apply", "Update").is_some(),
        "{mf:?}"
    );
    apply_ok(&s, &[], &manifest);
    // A changed value that client-side apply set is no conflict for kubectl.
    apply_ok(&s, &[], &deployment("csa", 4, ""));
    let replicas = s.ok(&["get", "deploy", "csa", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "4");
    let mf = managed_fields(&s, "csa");
    assert!(entry(&mf, "kubectl", "Apply").is_some(), "{mf:?}");
}
