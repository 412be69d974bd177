//! A pod's `securityContext.fsGroup` applied to its volumes, as upstream's
//! SetVolumeOwnership: every file and directory gets the group (symlinks are left
//! alone, since a chmod through them would override the target's defaultMode), group
//! read (and write unless the volume is read-only) is added to the mode, directories
//! also get search and the setgid bit so what containers create inherits the group.
//! With `fsGroupChangePolicy: OnRootMismatch` a volume whose root already has the
//! group and mode is not walked.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

const RW: u32 = 0o660;
const RO: u32 = 0o440;
const EXEC: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// The user every container of the pod runs as (each container's runAsUser, else the
/// pod's), or `None` when one has none or two differ: upstream's FsUserFrom, which
/// decides who owns the service account token.
pub fn fs_user(pod: &Pod) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    let mut users = containers.map(|c| {
        let own = c.security_context.as_ref().and_then(|s| s.run_as_user);
        own.or(pod_user)
    });
    let first = users.next()??;
    for u in users {
        if u? != first {
            return None;
        }
    }
    u32::try_from(first).ok()
}

/// The pod's fsGroup and whether its change policy is OnRootMismatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsGroup {
    pub gid: u32,
    pub on_root_mismatch: bool,
}

impl FsGroup {
    pub fn of(pod: &Pod) -> Option<FsGroup> {
        let sc = pod.spec.as_ref()?.security_context.as_ref()?;
        let gid = u32::try_from(sc.fs_group?).ok()?;
        Some(FsGroup {
            gid,
            on_root_mismatch: sc.fs_group_change_policy.as_deref() == Some("OnRootMismatch"),
        })
    }

    /// Gives `dir` and everything under it the group. `honour_policy` is false for
    /// the volumes upstream always walks (emptyDir and the API-data volumes).
    pub fn apply(&self, dir: &Path, read_only: bool, honour_policy: bool) -> io::Result<()> {
        if honour_policy && self.on_root_mismatch && !self.root_mismatch(dir, read_only) {
            return Ok(());
        }
        walk(dir, &|path, meta| change(path, meta, self.gid, read_only))
    }

    /// Whether the root lacks the group, the mode bits or setgid (upstream's
    /// requiresPermissionChange: any doubt means walking).
    fn root_mismatch(&self, dir: &Path, read_only: bool) -> bool {
        let Ok(meta) = std::fs::metadata(dir) else {
            return true;
        };
        if meta.gid() != self.gid || !meta.is_dir() {
            return true;
        }
        let want = if read_only { RO } else { RW } | EXEC;
        let mode = meta.mode();
        mode & want != want || mode & SETGID == 0
    }
}

/// The mode a payload file gets under an fsGroup: its defaultMode plus group (and
/// owner) read, what the walk would set, so the atomic writer's comparison of modes
/// does not see a change at every re-render.
pub fn payload_mode(mode: u32) -> u32 {
    mode | RO
}

fn change(path: &Path, meta: &std::fs::Metadata, gid: u32, read_only: bool) -> io::Result<()> {
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, None, Some(gid))?;
    let mut mask = if read_only { RO } else { RW };
    if meta.is_dir() {
        mask |= SETGID | EXEC;
    }
    let mode = meta.mode() & 0o7777;
    if mode | mask != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | mask))?;
    }
    Ok(())
}

/// Depth first, the root last (as upstream's walkDeep), never following symlinks.
fn walk(path: &Path, f: &dyn Fn(&Path, &std::fs::Metadata) -> io::Result<()>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            walk(&entry?.path(), f)?;
        }
    }
    f(path, &meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    fn gid(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().gid()
    }

    // Any group other than the file's own shows the chown; the tests run as root.
    const GID: u32 = 2000;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(d.join("sub/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("sub/f", d.join("link")).unwrap();
        dir
    }

    #[test]
    fn writable_volume_gets_group_rw_and_setgid_dirs() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tree();
        let d = dir.path();
        let fs = FsGroup {
            gid: GID,
            on_root_mismatch: false,
        };
        fs.apply(d, false, true).unwrap();
        assert_eq!((gid(d), mode(d)), (GID, 0o2775));
        assert_eq!((gid(&d.join("sub")), mode(&d.join("sub"))), (GID, 0o2775));
        assert_eq!(
            (gid(&d.join("sub/f")), mode(&d.join("sub/f"))),
            (GID, 0o660)
        );
        // The symlink itself is left alone.
        assert_ne!(gid(&d.join("link")), GID);
    }

    #[test]
    fn read_only_volume_keeps_its_modes_plus_group_read() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tree();
        let d = dir.path();
        let fs = FsGroup {
            gid: GID,
            on_root_mismatch: false,
        };
        fs.apply(d, true, false).unwrap();
        assert_eq!(mode(&d.join("sub/f")), 0o640);
        assert_eq!(mode(&d.join("sub")), 0o2755);
        assert_eq!(payload_mode(0o600), 0o640);
        assert_eq!(payload_mode(0o644), 0o644);
    }

    #[test]
    fn on_root_mismatch_skips_a_root_already_right() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tree();
        let d = dir.path();
        let fs = FsGroup {
            gid: GID,
            on_root_mismatch: true,
        };
        // The root right, a file below not: the walk is skipped.
        std::os::unix::fs::chown(d, None, Some(GID)).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o2770)).unwrap();
        fs.apply(d, false, true).unwrap();
        assert_ne!(gid(&d.join("sub/f")), GID);
        // Without setgid on the root it walks.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o770)).unwrap();
        fs.apply(d, false, true).unwrap();
        assert_eq!(gid(&d.join("sub/f")), GID);
        // emptyDir and the API-data volumes ignore the policy.
        std::os::unix::fs::chown(d.join("sub/f"), None, Some(0)).unwrap();
        fs.apply(d, false, false).unwrap();
        assert_eq!(gid(&d.join("sub/f")), GID);
    }

    #[test]
    fn fs_user_only_when_every_container_runs_as_one_user() {
        let pod = |v: serde_json::Value| serde_json::from_value::<Pod>(v).unwrap();
        let same = pod(json!({"spec": {"securityContext": {"runAsUser": 1000},
            "initContainers": [{"name": "i", "securityContext": {"runAsUser": 1000}}],
            "containers": [{"name": "a"}]}}));
        assert_eq!(fs_user(&same), Some(1000));
        let differ = pod(json!({"spec": {"securityContext": {"runAsUser": 1000},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 2000}}]}}));
        assert_eq!(fs_user(&differ), None);
        let unset = pod(json!({"spec": {"containers": [{"name": "a",
            "securityContext": {"runAsUser": 1000}}, {"name": "b"}]}}));
        assert_eq!(fs_user(&unset), None);
    }

    #[test]
    fn fs_group_from_the_pod() {
        let pod: Pod = serde_json::from_value(serde_json::json!({"spec": {"containers": [],
            "securityContext": {"fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch"}}}))
        .unwrap();
        assert_eq!(
            FsGroup::of(&pod),
            Some(FsGroup {
                gid: 2000,
                on_root_mismatch: true
            })
        );
        assert_eq!(FsGroup::of(&Pod::default()), None);
    }
}
