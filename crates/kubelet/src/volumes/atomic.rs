//! Upstream's AtomicWriter: a volume's files are written into a fresh timestamped
//! directory, then published by renaming one `..data` symlink onto it, so a reader
//! never sees half an update. The names the user sees are symlinks through `..data`:
//!
//! ```text
//! <target>/..2025_01_02_15_04_05.123456789/key   the payload of one version
//! <target>/..data -> ..2025_01_02_15_04_05.123456789
//! <target>/key -> ..data/key
//! ```

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub data: Vec<u8>,
    pub mode: u32,
    /// The file's owner, when not the kubelet's (the token of a pod whose containers
    /// all run as one user).
    pub owner: Option<u32>,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, File>;

/// Why a payload path is refused (upstream's validatePath).
pub fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    if p.len() > 4096 {
        return Err(format!(
            "invalid path: must be less than or equal to 4096 characters: {p:?}"
        ));
    }
    if Path::new(p).is_absolute() {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if Path::new(p).components().any(|c| c == Component::ParentDir) {
        return Err(format!("invalid path: must not contain '..': {p}"));
    }
    if p.starts_with("..") {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    Ok(())
}

/// Writes `payload` into `target` (which must exist); returns whether anything
/// changed. Paths of the previous version that are not in `payload` disappear.
pub fn write(target: &Path, payload: &Payload) -> io::Result<bool> {
    for p in payload.keys() {
        validate_path(p).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    let old_ts = std::fs::read_link(target.join(DATA)).ok();
    if let Some(old) = &old_ts
        && same(&target.join(old), payload)?
    {
        return Ok(false);
    }
    let ts = new_ts_dir(target)?;
    for (path, file) in payload {
        let full = ts.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, &file.data)?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode & 0o7777))?;
        if let Some(uid) = file.owner {
            std::os::unix::fs::chown(&full, Some(uid), None)?;
        }
    }
    let ts_name = ts.file_name().expect("ts dir has a name");
    let tmp = target.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    symlink(ts_name, &tmp)?;
    std::fs::rename(&tmp, target.join(DATA))?;
    // The user-visible names: one symlink per top-level entry of the payload.
    let visible: std::collections::BTreeSet<String> =
        payload.keys().map(|p| top_level(p).to_string()).collect();
    for name in &visible {
        let link = target.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA).join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(target)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("..") && !visible.contains(name.as_ref()) {
            let _ = std::fs::remove_file(target.join(name.as_ref()));
        }
    }
    if let Some(old) = old_ts {
        let _ = std::fs::remove_dir_all(target.join(old));
    }
    Ok(true)
}

fn top_level(p: &str) -> &str {
    p.split('/')
        .find(|s| !s.is_empty() && *s != ".")
        .unwrap_or(p)
}

/// `..<UTC time>.<unique>`, as upstream's os.MkdirTemp(target, "..2006_01_02_15_04_05.").
fn new_ts_dir(target: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let now = jiff::Timestamp::now();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "..{}.{}{n}",
            now.strftime("%Y_%m_%d_%H_%M_%S"),
            now.subsec_nanosecond()
        );
        let dir = target.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether `dir` holds exactly `payload` (contents and modes).
fn same(dir: &Path, payload: &Payload) -> io::Result<bool> {
    let mut found = Vec::new();
    if walk(dir, dir, &mut found).is_err() {
        return Ok(false);
    }
    if found.len() != payload.len() {
        return Ok(false);
    }
    for rel in found {
        let Some(want) = payload.get(&rel) else {
            return Ok(false);
        };
        let full = dir.join(&rel);
        let meta = std::fs::metadata(&full)?;
        let mode = meta.permissions().mode() & 0o7777;
        let owner_differs = want.owner.is_some_and(|uid| uid != meta.uid());
        if mode != want.mode & 0o7777 || owner_differs || std::fs::read(&full)? != want.data {
            return Ok(false);
        }
    }
    Ok(true)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(s: &str, mode: u32) -> File {
        File {
            data: s.as_bytes().to_vec(),
            mode,
            owner: None,
        }
    }

    #[test]
    fn writes_through_data_symlink_and_updates_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let first = Payload::from([
            ("a".into(), file("one", 0o644)),
            ("sub/b".into(), file("two", 0o600)),
        ]);
        assert!(write(t, &first).unwrap());
        assert_eq!(std::fs::read_to_string(t.join("a")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(t.join("sub/b")).unwrap(), "two");
        assert_eq!(
            std::fs::read_link(t.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_link(t.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        let ts1 = std::fs::read_link(t.join(DATA)).unwrap();
        assert!(ts1.to_string_lossy().starts_with(".."), "{ts1:?}");
        let mode = std::fs::metadata(t.join("sub/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // The same payload again changes nothing.
        assert!(!write(t, &first).unwrap());
        assert_eq!(std::fs::read_link(t.join(DATA)).unwrap(), ts1);

        // An update swaps ..data, drops names no longer there, removes the old version.
        let second = Payload::from([
            ("a".into(), file("uno", 0o644)),
            ("c".into(), file("3", 0o400)),
        ]);
        assert!(write(t, &second).unwrap());
        assert_eq!(std::fs::read_to_string(t.join("a")).unwrap(), "uno");
        assert_eq!(std::fs::read_to_string(t.join("c")).unwrap(), "3");
        assert!(std::fs::symlink_metadata(t.join("sub")).is_err());
        assert!(!t.join(&ts1).exists());
        let mut names: Vec<String> = std::fs::read_dir(t)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("..2"))
            .collect();
        names.sort();
        assert_eq!(names, ["..data", "a", "c"]);

        // A mode change alone is an update too.
        let third = Payload::from([
            ("a".into(), file("uno", 0o640)),
            ("c".into(), file("3", 0o400)),
        ]);
        assert!(write(t, &third).unwrap());
    }

    #[test]
    fn refuses_escaping_paths() {
        for bad in ["/etc/passwd", "../x", "a/../../x", "..hidden", ""] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        assert!(validate_path("a/b.txt").is_ok());
        let dir = tempfile::tempdir().unwrap();
        let bad = Payload::from([("../x".into(), file("", 0o644))]);
        assert!(write(dir.path(), &bad).is_err());
    }
}
