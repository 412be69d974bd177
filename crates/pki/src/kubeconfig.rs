//! Kubeconfigs: writing one for a server (k8rs writes the admin one to
//! [`DEFAULT_PATH`], mode 0600), and merging a cluster/user/context into the user's
//! `~/.kube/config`, made current, with everything else in that file kept — other
//! entries and fields we do not know — as minikube does. Comments in a merged file are
//! not kept (kubectl does not keep them either).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{Value, json};

use crate::files::{read, resolve_link, write_private};
use crate::{CertAndKey, Error, Result};

/// Where k8rs writes the admin kubeconfig unless told otherwise (k3s: `/etc/rancher/k3s/k3s.yaml`).
pub const DEFAULT_PATH: &str = "/etc/k8rs/k8rs.yaml";
/// The name of the cluster, user and context k8rs writes.
pub const DEFAULT_NAME: &str = "k8rs";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn config(name: &str, server: &str, ca_pem: &str, user: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    })
}

/// A kubeconfig with one cluster, user and context, all named `name`, for `server`
/// (e.g. `https://127.0.0.1:6443`), trusting `ca_pem`, authenticating with `user`'s
/// client certificate.
pub fn render(name: &str, server: &str, ca_pem: &str, user: &CertAndKey) -> Value {
    config(
        name,
        server,
        ca_pem,
        json!({"client-certificate-data": b64(&user.cert_pem), "client-key-data": b64(&user.key_pem)}),
    )
}

/// Like [`render`], authenticating with a bearer token.
pub fn render_with_token(name: &str, server: &str, ca_pem: &str, token: &str) -> Value {
    config(name, server, ca_pem, json!({"token": token}))
}

/// The kubeconfig as YAML.
pub fn to_yaml(config: &Value) -> Result<String> {
    serde_saphyr::to_string(config).map_err(|e| Error::Kubeconfig {
        path: PathBuf::new(),
        reason: e.to_string(),
    })
}

/// Writes a kubeconfig file (0600, missing directories created 0700).
pub fn write(path: &Path, config: &Value) -> Result<()> {
    let yaml = to_yaml(config).map_err(|e| match e {
        Error::Kubeconfig { reason, .. } => Error::Kubeconfig {
            path: path.to_path_buf(),
            reason,
        },
        other => other,
    })?;
    write_private(path, yaml.as_bytes())
}

/// The kubeconfig a user's kubectl reads first: the first entry of `$KUBECONFIG`, else
/// `$HOME/.kube/config`; `None` without either.
pub fn user_config_path() -> Option<PathBuf> {
    config_path_from(std::env::var_os("KUBECONFIG"), std::env::var_os("HOME"))
}

fn config_path_from(kubeconfig: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    if let Some(list) = kubeconfig
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Some(first);
    }
    home.filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".kube/config"))
}

/// Replaces the entry called `name` in `list`, or appends it.
fn upsert(list: &mut Value, name: &str, entry: Value) {
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut() {
        match items.iter_mut().find(|e| e["name"] == name) {
            Some(e) => *e = entry,
            None => items.push(entry),
        }
    }
}

/// Merges `config`'s clusters, users and contexts into the kubeconfig at `path`
/// (created if missing; a symlink is followed), replacing entries of the same name,
/// and makes `config`'s context current. Everything else in the file is kept.
pub fn merge(path: &Path, config: &Value) -> Result<()> {
    let path = resolve_link(path);
    let bad = |reason: String| Error::Kubeconfig {
        path: path.clone(),
        reason,
    };
    let mut existing: Value = match read(&path)? {
        Some(text) if !text.trim().is_empty() => {
            serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?
        }
        _ => json!({"apiVersion": "v1", "kind": "Config", "preferences": {}}),
    };
    let Some(fields) = existing.as_object_mut() else {
        return Err(bad("not a kubeconfig (not a mapping)".into()));
    };
    for key in ["apiVersion", "kind"] {
        if !fields.contains_key(key) {
            fields.insert(key.into(), config[key].clone());
        }
    }
    for field in ["clusters", "users", "contexts"] {
        for entry in config[field].as_array().into_iter().flatten() {
            let name = entry["name"].as_str().unwrap_or_default().to_string();
            upsert(&mut existing[field], &name, entry.clone());
        }
    }
    existing["current-context"] = config["current-context"].clone();
    write(&path, &existing)
}

#[cfg(test)]
mod tests;
