//! hostPath: a path of the node, checked (or created) per its `type` with upstream's
//! checkTypeInternal and its messages.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// Checks `path` against a hostPath `type`, creating it for the `...OrCreate` types.
pub fn check_type(path: &Path, kind: &str) -> Result<(), String> {
    let shown = path.display();
    // Follows symlinks, as upstream's checks stat the path.
    let meta = std::fs::metadata(path).ok();
    let ft = meta.as_ref().map(|m| m.file_type());
    let exists = std::fs::symlink_metadata(path).is_ok();
    let is = |f: fn(&std::fs::FileType) -> bool| ft.as_ref().is_some_and(f);
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if !exists => {
            std::fs::create_dir_all(path).map_err(|e| format!("mkdir {shown}: {e}"))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("chmod {shown}: {e}"))
        }
        "DirectoryOrCreate" | "Directory" => is(|f| f.is_dir())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a directory")),
        "FileOrCreate" if !exists => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| format!("open {shown}: {e}"))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| format!("chmod {shown}: {e}"))
        }
        "FileOrCreate" | "File" => is(|f| f.is_file())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a file")),
        "Socket" => is(|f| f.is_socket())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a socket file")),
        "CharDevice" => is(|f| f.is_char_device()).then_some(()).ok_or_else(|| {
            format!("hostPath type check failed: {shown} is not a character device")
        }),
        "BlockDevice" => is(|f| f.is_block_device())
            .then_some(())
            .ok_or_else(|| format!("hostPath type check failed: {shown} is not a block device")),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_checks_match_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let file = d.join("f");
        std::fs::write(&file, "x").unwrap();

        assert_eq!(check_type(&d.join("missing"), ""), Ok(()));
        assert_eq!(check_type(d, "Directory"), Ok(()));
        assert_eq!(
            check_type(&file, "Directory"),
            Err(format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            ))
        );
        assert_eq!(
            check_type(&d.join("nope"), "Directory"),
            Err(format!(
                "hostPath type check failed: {}/nope is not a directory",
                d.display()
            ))
        );
        assert_eq!(check_type(&file, "File"), Ok(()));
        assert_eq!(
            check_type(d, "File"),
            Err(format!(
                "hostPath type check failed: {} is not a file",
                d.display()
            ))
        );
        assert_eq!(
            check_type(&file, "Socket"),
            Err(format!(
                "hostPath type check failed: {} is not a socket file",
                file.display()
            ))
        );
        assert_eq!(check_type(Path::new("/dev/null"), "CharDevice"), Ok(()));
        assert_eq!(
            check_type(&file, "CharDevice"),
            Err(format!(
                "hostPath type check failed: {} is not a character device",
                file.display()
            ))
        );
        assert_eq!(
            check_type(&file, "BlockDevice"),
            Err(format!(
                "hostPath type check failed: {} is not a block device",
                file.display()
            ))
        );
        assert_eq!(
            check_type(&file, "Bogus"),
            Err("Bogus is an invalid volume type".into())
        );

        let made = d.join("new/dir");
        assert_eq!(check_type(&made, "DirectoryOrCreate"), Ok(()));
        assert!(made.is_dir());
        assert_eq!(
            std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let made = d.join("new/file");
        assert_eq!(check_type(&made, "FileOrCreate"), Ok(()));
        assert!(made.is_file());
        // Existing things of the wrong kind fail the ...OrCreate types too.
        assert!(check_type(&file, "DirectoryOrCreate").is_err());
        assert!(check_type(d, "FileOrCreate").is_err());
    }
}
