//! A container's volumeMounts as CRI mounts: the volume's host path (or a subPath of
//! it), read-only when the mount or the volume says so, and the mount propagation.

use std::collections::HashMap;
use std::path::Path;

use cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::Container;

use super::Mounted;

/// `expand` resolves `$(VAR)` in subPathExpr from the container's environment.
pub fn container_mounts(
    c: &Container,
    volumes: &HashMap<String, Mounted>,
    expand: impl Fn(&str) -> String,
) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for vm in c.volume_mounts.iter().flatten() {
        let vol = volumes.get(&vm.name).ok_or_else(|| {
            format!(
                "cannot find volume {:?} to mount into container {:?}",
                vm.name, c.name
            )
        })?;
        let sub = match (&vm.sub_path, &vm.sub_path_expr) {
            (Some(s), _) if !s.is_empty() => s.clone(),
            (_, Some(e)) if !e.is_empty() => expand(e),
            _ => String::new(),
        };
        let host = if sub.is_empty() {
            vol.path.clone()
        } else {
            if Path::new(&sub).is_absolute() {
                return Err(format!(
                    "error SubPath `{sub}` must not be an absolute path"
                ));
            }
            if Path::new(&sub)
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(format!(
                    "unable to provision SubPath `{sub}`: must not contain '..'"
                ));
            }
            let host = vol.path.join(&sub);
            // Upstream creates a missing subPath as a directory before mounting it.
            if std::fs::symlink_metadata(&host).is_err() {
                std::fs::create_dir_all(&host)
                    .map_err(|e| format!("failed to mkdir {:?}: {e}", host.display()))?;
            }
            host
        };
        let propagation = match vm.mount_propagation.as_deref() {
            Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => MountPropagation::PropagationBidirectional,
            _ => MountPropagation::PropagationPrivate,
        };
        out.push(Mount {
            container_path: vm.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: vm.read_only == Some(true) || vol.read_only,
            propagation: propagation as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    #[test]
    fn maps_mounts_subpaths_and_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let vols = HashMap::from([
            (
                "data".to_string(),
                Mounted {
                    path: dir.path().to_path_buf(),
                    read_only: false,
                },
            ),
            (
                "cfg".to_string(),
                Mounted {
                    path: PathBuf::from("/cfg"),
                    read_only: true,
                },
            ),
        ]);
        let c: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "data", "mountPath": "/d", "mountPropagation": "HostToContainer"},
            {"name": "data", "mountPath": "/s", "subPath": "x/y", "readOnly": true},
            {"name": "data", "mountPath": "/e", "subPathExpr": "$(POD)"},
            {"name": "cfg", "mountPath": "/etc/cfg"},
        ]}))
        .unwrap();
        let m = container_mounts(&c, &vols, |s| s.replace("$(POD)", "p1")).unwrap();
        let d = dir.path().display();
        assert_eq!(m[0].host_path, d.to_string());
        assert_eq!(
            m[0].propagation,
            MountPropagation::PropagationHostToContainer as i32
        );
        assert!(!m[0].readonly);
        assert_eq!(m[1].host_path, format!("{d}/x/y"));
        assert!(m[1].readonly);
        assert!(dir.path().join("x/y").is_dir());
        assert_eq!(m[2].host_path, format!("{d}/p1"));
        assert_eq!(m[3].container_path, "/etc/cfg");
        assert!(m[3].readonly, "API-data volumes are always read-only");

        let bad: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "data", "mountPath": "/s", "subPath": "../etc"}]}))
        .unwrap();
        assert!(container_mounts(&bad, &vols, |s| s.into()).is_err());
        let missing: Container = serde_json::from_value(json!({"name": "c", "volumeMounts": [
            {"name": "nope", "mountPath": "/s"}]}))
        .unwrap();
        assert_eq!(
            container_mounts(&missing, &vols, |s| s.into()).unwrap_err(),
            "cannot find volume \"nope\" to mount into container \"c\""
        );
    }
}
