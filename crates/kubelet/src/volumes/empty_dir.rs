//! emptyDir: a directory of the pod's own; `medium: Memory` puts a tmpfs on it (sized
//! by sizeLimit when set). It lives as long as the pod and survives container restarts.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k8s_openapi::api::core::v1::EmptyDirVolumeSource;

/// Creates the directory (0777, as upstream, so any container user can write) and
/// mounts the tmpfs of a memory-backed one unless it is mounted already.
pub fn set_up(dir: &Path, source: &EmptyDirVolumeSource) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    if source.medium.as_deref() == Some("Memory") && !is_mount_point(dir) {
        let options = tmpfs_options(source);
        let data = CString::new(options).expect("no NUL in mount options");
        rustix::mount::mount(
            "tmpfs",
            dir,
            "tmpfs",
            rustix::mount::MountFlags::NODEV | rustix::mount::MountFlags::NOSUID,
            Some(data.as_c_str()),
        )
        .map_err(|e| format!("mount tmpfs on {}: {e}", dir.display()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))
}

/// `mode=0777` plus `size=<bytes>` from sizeLimit.
pub fn tmpfs_options(source: &EmptyDirVolumeSource) -> String {
    let size = source
        .size_limit
        .as_ref()
        .and_then(|q| scheduler::resources::parse_milli(&q.0))
        .filter(|m| *m > 0)
        .map(|m| (m + 999) / 1000);
    match size {
        Some(bytes) => format!("mode=0777,size={bytes}"),
        None => "mode=0777".into(),
    }
}

fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    cri::mounts::mount_points_under(&dir)
        .unwrap_or_default()
        .contains(&dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn tmpfs_size_from_size_limit() {
        let mut s = EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: None,
        };
        assert_eq!(tmpfs_options(&s), "mode=0777");
        s.size_limit = Some(Quantity("64Mi".into()));
        assert_eq!(tmpfs_options(&s), format!("mode=0777,size={}", 64 << 20));
    }

    #[test]
    fn disk_backed_is_a_plain_directory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("v");
        set_up(&d, &EmptyDirVolumeSource::default()).unwrap();
        assert!(d.is_dir());
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o777
        );
        assert!(!is_mount_point(&d));
    }
}
