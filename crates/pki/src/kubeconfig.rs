//! Kubeconfigs: the admin kubeconfig file, and merging a `k8rs` context into the
//! user's `~/.kube/config` (made current, everything else kept), as minikube does.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use crate::files::{read, write_private};
use crate::{CertAndKey, Error, Result};

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// A kubeconfig with one cluster, user and context, all named `name`.
pub fn render(name: &str, server: &str, ca_pem: &str, user: &CertAndKey) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": name, "user": {"client-certificate-data": b64(&user.cert_pem), "client-key-data": b64(&user.key_pem)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    })
}

fn to_yaml(path: &Path, v: &Value) -> Result<String> {
    serde_saphyr::to_string(v).map_err(|e| Error::Kubeconfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes a kubeconfig file (0600).
pub fn write(path: &Path, config: &Value) -> Result<()> {
    write_private(path, to_yaml(path, config)?.as_bytes())
}

/// Replaces or adds the entry called `name` in the list at `field`.
fn upsert(list: &mut Value, name: &str, entry: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    let items = list.as_array_mut().expect("just made an array");
    match items.iter_mut().find(|e| e["name"] == name) {
        Some(e) => *e = entry,
        None => items.push(entry),
    }
}

/// Merges `config`'s cluster, user and context into the kubeconfig at `path` and makes
/// its context current; other entries and fields are kept.
pub fn merge(path: &Path, config: &Value) -> Result<()> {
    let bad = |reason: String| Error::Kubeconfig {
        path: path.to_path_buf(),
        reason,
    };
    let mut existing: Value = match read(path)? {
        Some(text) if !text.trim().is_empty() => {
            serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?
        }
        _ => json!({"apiVersion": "v1", "kind": "Config", "preferences": {}}),
    };
    if !existing.is_object() {
        return Err(bad("not a kubeconfig (not a mapping)".into()));
    }
    for field in ["clusters", "users", "contexts"] {
        for entry in config[field].as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or_default().to_string();
            upsert(&mut existing[field], &name, entry.clone());
        }
    }
    existing["current-context"] = config["current-context"].clone();
    write(path, &existing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_other_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: 'https://x'}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\ncurrent-context: other\nusers:\n- name: other\n  user: {token: t}\n",
        )
        .unwrap();
        let id = CertAndKey {
            cert_pem: "c".into(),
            key_pem: "k".into(),
        };
        merge(&path, &render("k8rs", "https://127.0.0.1:6443", "ca", &id)).unwrap();
        let merged: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(merged["current-context"], "k8rs");
        assert_eq!(merged["contexts"].as_array().unwrap().len(), 2);
        assert_eq!(merged["users"][0]["user"]["token"], "t");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
