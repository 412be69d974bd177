use super::*;

const YAML: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: nginx
    image: nginx
    ports:
    - containerPort: 80
";

fn parse_yaml(text: &str, file: &str, node: &str) -> Result<Pod, String> {
    parse(text.as_bytes(), Path::new(file), node)
}

#[test]
fn named_for_the_node_with_upstreams_annotations_and_defaults() {
    let pod = parse_yaml(YAML, "/m/web.yaml", "Node-A").unwrap();
    let m = &pod.metadata;
    assert_eq!(m.name.as_deref(), Some("web-node-a"));
    assert_eq!(m.namespace.as_deref(), Some("default"));
    let uid = m.uid.clone().unwrap();
    assert_eq!(uid.len(), 32);
    assert!(uid.chars().all(|c| c.is_ascii_hexdigit()));
    let a = m.annotations.as_ref().unwrap();
    assert_eq!(a[HASH], uid);
    assert_eq!(a[SOURCE], "file");
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("Node-A"));
    // API defaults applied, as upstream's decoder does.
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    let tolerations = spec.tolerations.as_ref().unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists")
                && t.effect.as_deref() == Some("NoExecute")
                && t.key.is_none())
    );
}

#[test]
fn uid_follows_content_node_and_file_not_formatting() {
    let uid = |text: &str, file: &str, node: &str| {
        parse_yaml(text, file, node).unwrap().metadata.uid.unwrap()
    };
    let a = uid(YAML, "/m/web.yaml", "n1");
    assert_eq!(a, uid(YAML, "/m/web.yaml", "n1"), "stable");
    // Same pod, other key order and layout: same UID.
    let reordered = "kind: Pod\napiVersion: v1\nspec: {containers: [{image: nginx, name: nginx, ports: [{containerPort: 80}]}]}\nmetadata: {labels: {app: web}, name: web}\n";
    assert_eq!(a, uid(reordered, "/m/web.yaml", "n1"));
    assert_ne!(a, uid(YAML, "/m/web.yaml", "n2"), "node");
    assert_ne!(a, uid(YAML, "/m/other.yaml", "n1"), "file");
    let edited = YAML.replace("image: nginx", "image: busybox");
    assert_ne!(a, uid(&edited, "/m/web.yaml", "n1"), "spec");
    // A UID in the manifest is kept (upstream only generates a missing one).
    let given = YAML.replace("  name: web\n", "  name: web\n  uid: fixed-uid\n");
    let pod = parse_yaml(&given, "/m/web.yaml", "n1").unwrap();
    assert_eq!(pod.metadata.uid.as_deref(), Some("fixed-uid"));
    assert_eq!(pod.metadata.annotations.unwrap()[HASH], "fixed-uid");
}

#[test]
fn json_and_namespaces() {
    let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db","namespace":"kube-system"},
        "spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let pod = parse(json.as_bytes(), Path::new("/m/db.json"), "n1").unwrap();
    assert_eq!(full_name(&pod), "kube-system/db-n1");
}

#[test]
fn rejects_what_is_not_a_valid_pod() {
    let deployment = YAML.replace("kind: Pod", "kind: Deployment");
    let e = parse_yaml(&deployment, "/m/a.yaml", "n").unwrap_err();
    assert!(e.contains("couldn't parse as pod"), "{e}");
    let nameless = YAML.replace("  name: web\n", "");
    assert!(parse_yaml(&nameless, "/m/a.yaml", "n").is_err());
    let no_image = YAML.replace("    image: nginx\n", "");
    let e = parse_yaml(&no_image, "/m/a.yaml", "n").unwrap_err();
    assert!(e.contains("invalid pod"), "{e}");
    assert!(parse_yaml("{not yaml: [", "/m/a.yaml", "n").is_err());
}

#[test]
fn reads_manifests_skipping_hidden_broken_and_duplicate_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("b.yaml"), YAML).unwrap();
    std::fs::write(d.join("a.yml"), YAML.replace("name: web", "name: api")).unwrap();
    // Same name as b.yaml's pod, sorted after it: ignored.
    std::fs::write(
        d.join("c.json"),
        serde_json::to_string(&serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "x", "image": "busybox"}]}}))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(d.join(".hidden.yaml"), YAML.replace("name: web", "name: h")).unwrap();
    std::fs::write(d.join("notes.txt"), "hello").unwrap();
    std::fs::write(d.join("broken.yaml"), "kind: Pod\n").unwrap();
    let pods = read_all(d, "n1").unwrap();
    let names: Vec<String> = pods.iter().map(full_name).collect();
    assert_eq!(names, ["default/api-n1", "default/web-n1"]);
    assert_eq!(pods[1].spec.as_ref().unwrap().containers[0].name, "nginx");
    assert!(read_all(&d.join("missing"), "n1").unwrap().is_empty());
    // A single file works as the path too.
    assert_eq!(read_all(&d.join("b.yaml"), "n1").unwrap().len(), 1);
}

#[test]
fn seen_is_rfc3339_with_nanoseconds() {
    let s = seen_now();
    assert!(s.ends_with('Z'), "{s}");
    assert!(s.parse::<jiff::Timestamp>().is_ok(), "{s}");
}
