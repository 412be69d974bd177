//! Static pods from files, as upstream's file config source: every `*.yaml`, `*.yml`
//! and `*.json` file of the manifest directory holds one Pod, which the kubelet runs
//! without the API.
//!
//! Each pod is made node-specific the way upstream's `applyDefaults` does it: API
//! defaults first, then a UID hashed from the defaulted pod, the node and the file (so
//! an edit gives a new UID and a restart; an untouched file keeps its UID across
//! kubelet restarts), the name `<name>-<node>`, namespace `default` if unset,
//! `spec.nodeName`, the `kubernetes.io/config.{hash,source,seen}` annotations, and a
//! toleration of every NoExecute taint so node problems never evict it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Pod, Toleration};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The static pod's hash (its UID), which the mirror pod carries as `MIRROR`.
pub const HASH: &str = "kubernetes.io/config.hash";
/// Where the pod came from: `file` here, `api` for the API's pods.
pub const SOURCE: &str = "kubernetes.io/config.source";
/// When the kubelet first saw the pod (RFC 3339 with nanoseconds, as upstream).
pub const SEEN: &str = "kubernetes.io/config.seen";

/// Whether the file is a manifest: upstream skips hidden files; we also only read the
/// extensions people use for pods, so editor backups (`pod.yaml~`) are left alone.
fn is_manifest(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    !name.starts_with('.') && matches!(ext, "yaml" | "yml" | "json")
}

/// The manifests of `path` (a directory, or one file), sorted by path. A missing
/// path has none; one that cannot be read is an error (the caller keeps what runs,
/// as upstream does).
pub fn files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_manifest(p) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every manifest of `path`; a file that cannot be read or parsed is logged and
/// skipped (its pod stops, as upstream), as is a second pod with a name already taken.
pub fn read_all(path: &Path, node: &str) -> std::io::Result<Vec<Pod>> {
    let mut pods = Vec::new();
    let mut names = HashSet::new();
    for file in files(path)? {
        let pod = std::fs::read(&file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| parse(&bytes, &file, node));
        match pod {
            Ok(pod) if names.insert(full_name(&pod)) => pods.push(pod),
            Ok(pod) => {
                tracing::warn!(file = %file.display(), pod = full_name(&pod), "a static pod of this name exists already; ignoring the file")
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read a static pod manifest")
            }
        }
    }
    Ok(pods)
}

/// `<namespace>/<name>`.
pub fn full_name(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    )
}

/// One manifest as the static pod this node runs (without the `seen` annotation,
/// which the caller adds once, when it first sees the UID).
pub fn parse(bytes: &[u8], file: &Path, node: &str) -> Result<Pod, String> {
    let json = file.extension().is_some_and(|e| e == "json");
    let mut value: Value = if json {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    let (kind, version) = (&value["kind"], &value["apiVersion"]);
    if kind != "Pod" || version != "v1" {
        return Err(format!(
            "couldn't parse as pod: want apiVersion v1, kind Pod; got {version}, {kind}"
        ));
    }
    let strategy = api::strategies::core::for_resource("pods").expect("pods have a strategy");
    strategy.default(&mut value);
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if pod.metadata.name.as_deref().unwrap_or_default().is_empty() {
        return Err("the pod has no metadata.name".into());
    }
    // The UID hashes the defaulted pod as the file gives it (a typed round trip, so key
    // order and formatting do not matter), then where it came from.
    let uid = match pod.metadata.uid.clone().filter(|u| !u.is_empty()) {
        Some(uid) => uid,
        None => {
            let mut h = Sha256::new();
            h.update(serde_json::to_vec(&pod).expect("a pod serializes"));
            h.update(format!("host:{node}"));
            h.update(format!("file:{}", file.display()));
            hex(&h.finalize()[..16])
        }
    };
    let m = &mut pod.metadata;
    m.uid = Some(uid.clone());
    m.name = Some(format!(
        "{}-{}",
        m.name.as_deref().unwrap_or_default(),
        node.to_lowercase()
    ));
    if m.namespace.as_deref().unwrap_or_default().is_empty() {
        m.namespace = Some("default".into());
    }
    let annotations = m.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(HASH.into(), uid);
    annotations.insert(SOURCE.into(), "file".into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.to_string());
    let tolerate_all = Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Default::default()
    };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.contains(&tolerate_all) {
        tolerations.push(tolerate_all);
    }
    let errors = strategy.validate(&serde_json::to_value(&pod).expect("a pod serializes"));
    if let Some(e) = errors.first() {
        return Err(format!("invalid pod: {e}"));
    }
    Ok(pod)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now with nanoseconds, as Go's RFC3339Nano writes it (trailing zeros dropped).
pub fn seen_now() -> String {
    let t = jiff::Timestamp::now();
    let nanos = t.subsec_nanosecond();
    let base = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests;
