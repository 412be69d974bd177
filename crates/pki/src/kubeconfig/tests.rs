use super::*;
use crate::files::mode;

fn id() -> CertAndKey {
    CertAndKey {
        cert_pem: "CERT".into(),
        key_pem: "KEY".into(),
    }
}

fn load(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn writes_a_private_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("etc/k8rs/k8rs.yaml");
    let cfg = render("k8rs", "https://127.0.0.1:6443", "CA", &id());
    write(&path, &cfg).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("etc/k8rs")), 0o700);
    let back = load(&path);
    assert_eq!(back, cfg);
    assert_eq!(
        back["clusters"][0]["cluster"]["certificate-authority-data"],
        "Q0E="
    );
    assert_eq!(back["users"][0]["user"]["client-key-data"], "S0VZ");
    let token = render_with_token("t", "https://x", "CA", "abc");
    assert_eq!(token["users"][0]["user"], json!({"token": "abc"}));
}

const EXISTING: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: 'https://x', insecure-skip-tls-verify: true, extensions: [{name: e, extension: {a: 1}}]}
- name: k8rs
  cluster: {server: 'https://stale'}
contexts:
- name: other
  context: {cluster: other, user: other, namespace: "007"}
current-context: other
users:
- name: other
  user: {token: "12345", username: "true", password: "null"}
- name: tricky
  user: {token: "yes", as: "~", as-uid: "0x1F", as-groups: ["1e3", "", "on"]}
preferences: {colors: true}
extensions:
- name: mine
  extension: {kind: Thing, spec: {n: 1.5}}
"#;

#[test]
fn merge_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(&path, EXISTING).unwrap();
    let before = load(&path);
    merge(
        &path,
        &render("k8rs", "https://127.0.0.1:6443", "ca", &id()),
    )
    .unwrap();
    let merged = load(&path);

    assert_eq!(merged["current-context"], "k8rs");
    assert_eq!(merged["clusters"][0], before["clusters"][0]);
    assert_eq!(
        merged["clusters"][1]["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    assert_eq!(
        merged["clusters"].as_array().unwrap().len(),
        2,
        "replaced, not added"
    );
    assert_eq!(merged["contexts"].as_array().unwrap().len(), 2);
    assert_eq!(merged["users"].as_array().unwrap().len(), 3);
    // Strings that look like numbers, booleans or nulls stay strings.
    assert_eq!(merged["users"][0], before["users"][0]);
    assert_eq!(merged["users"][0]["user"]["token"], "12345");
    assert_eq!(merged["users"][1], before["users"][1]);
    assert_eq!(merged["contexts"][0]["context"]["namespace"], "007");
    assert_eq!(merged["preferences"], before["preferences"]);
    assert_eq!(merged["extensions"], before["extensions"]);
    assert_eq!(mode(&path), 0o600);

    // Merging again changes nothing.
    let once = std::fs::read_to_string(&path).unwrap();
    merge(
        &path,
        &render("k8rs", "https://127.0.0.1:6443", "ca", &id()),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), once);
}

#[test]
fn merge_creates_a_missing_file_and_follows_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home/.kube/config");
    let cfg = render("k8rs", "https://127.0.0.1:6443", "ca", &id());
    merge(&path, &cfg).unwrap();
    assert_eq!(load(&path), cfg);
    assert_eq!(mode(&dir.path().join("home/.kube")), 0o700);

    let target = dir.path().join("real-config");
    std::fs::write(&target, EXISTING).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    merge(&link, &cfg).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(load(&target)["current-context"], "k8rs");
}

#[test]
fn merge_refuses_what_is_not_a_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let cfg = render("k8rs", "https://127.0.0.1:6443", "ca", &id());
    for junk in ["- a\n- b\n", "key: [unclosed\n"] {
        std::fs::write(&path, junk).unwrap();
        let err = merge(&path, &cfg).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), junk, "left alone");
    }
}

#[test]
fn user_config_path_prefers_kubeconfig() {
    let home = Some("/home/u".into());
    assert_eq!(
        config_path_from(Some("/a/one:/b/two".into()), home.clone()),
        Some(PathBuf::from("/a/one"))
    );
    assert_eq!(
        config_path_from(Some("".into()), home.clone()),
        Some(PathBuf::from("/home/u/.kube/config"))
    );
    assert_eq!(
        config_path_from(None, home),
        Some(PathBuf::from("/home/u/.kube/config"))
    );
    assert_eq!(config_path_from(None, None), None);
}
