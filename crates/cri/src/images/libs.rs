//! The shared libraries a host binary needs, found with `ldd`, so an image can carry
//! the binary and exactly the host's libraries it was linked against.

use std::path::{Path, PathBuf};

use super::{Entry, Error, Result};

/// The libraries `binary` loads (transitively), the dynamic loader included, as `ldd`
/// reports them; empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| Error::Ldd {
            binary: binary.into(),
            detail: format!("cannot run ldd (package libc-bin): {e}"),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stdout.contains("not a dynamic executable") || stderr.contains("not a dynamic") {
            return Ok(Vec::new());
        }
        return Err(Error::Ldd {
            binary: binary.into(),
            detail: format!("ldd {}: {}", out.status, stderr.trim()),
        });
    }
    parse_ldd(&stdout).map_err(|detail| Error::Ldd {
        binary: binary.into(),
        detail,
    })
}

/// Parses ldd's lines: `name => /path (0x…)`, `/path (0x…)` (the loader), and
/// `name (0x…)` (the vDSO, no file); `name => not found` is an error.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!(
                        "{} not found: install the Debian package that has it (apt-file search {})",
                        name.trim(),
                        name.trim()
                    ));
                }
                rest.split_whitespace().next().unwrap_or_default()
            }
            None => line.split_whitespace().next().unwrap_or_default(),
        };
        if path.starts_with('/') {
            let path = PathBuf::from(path);
            if !libs.contains(&path) {
                libs.push(path);
            }
        }
    }
    Ok(libs)
}

/// `binary` at `image_path` plus its libraries at the paths ldd reports (the dynamic
/// loader finds them there: Debian's default library directories, and the loader at the
/// path written into the binary).
pub fn binary_with_libraries(image_path: &str, binary: &Path) -> Result<Vec<Entry>> {
    let mut entries = vec![Entry::host_file(image_path, binary)];
    for lib in shared_libraries(binary)? {
        let path = lib.to_string_lossy().into_owned();
        entries.push(Entry::host_file(&path, lib));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibpcre2-8.so.0 => /lib/x86_64-linux-gnu/libpcre2-8.so.0 (0x00007f91)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f90)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f92)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let missing = parse_ldd("\tlibssl.so.3 => not found\n").unwrap_err();
        assert!(missing.starts_with("libssl.so.3 not found"), "{missing}");
    }

    #[test]
    fn finds_the_libraries_of_a_host_binary() {
        let libs = shared_libraries(Path::new("/bin/ls")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
        assert!(libs.iter().all(|l| l.exists()), "{libs:?}");
    }
}
