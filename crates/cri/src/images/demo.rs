//! `k8rs/demo`: the project's own demo app (crate `demo`, binary `k8rs-demo`) with the
//! host libraries it links, listening on 8080.

use std::path::{Path, PathBuf};

use super::libs::binary_with_libraries;
use super::{Entry, Error, OciImage, Result};

pub const DEMO_IMAGE: &str = "docker.io/k8rs/demo:latest";

pub const DEMO_BINARY: &str = "k8rs-demo";

/// Where the binary goes in the image.
const IN_IMAGE: &str = "/usr/local/bin/k8rs-demo";

/// The demo image from the `k8rs-demo` binary at `binary`.
pub fn demo_image(binary: &Path) -> Result<OciImage> {
    let mut entries = binary_with_libraries(IN_IMAGE, binary)?;
    entries.extend([
        Entry::dir("/tmp", 0o1777),
        Entry::dir("/etc", 0o755),
        Entry::bytes(
            "/etc/passwd",
            "root:x:0:0:root:/root:/nonexistent\n\
             nobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n",
            0o644,
        ),
        Entry::bytes("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
    ]);
    Ok(OciImage {
        name: DEMO_IMAGE.into(),
        entries,
        entrypoint: vec![IN_IMAGE.into()],
        env: vec![super::builtin::PATH_ENV.into()],
        working_dir: "/".into(),
        ..Default::default()
    })
}

/// The `k8rs-demo` binary: `explicit` if given (it must exist); else beside the running
/// executable (`target/debug/k8rs-demo` beside `target/debug/k8rs`, or
/// `/usr/local/bin/k8rs-demo` beside an installed `k8rs`), also one level up from a
/// cargo test executable in `target/<profile>/deps`.
pub fn find_demo_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    let candidates = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => candidates(std::env::current_exe().ok().as_deref()),
    };
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(Error::DemoNotFound { looked: candidates })
}

fn candidates(exe: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_path_buf());
        }
    }
    dirs.push("/usr/local/bin".into());
    dirs.dedup();
    dirs.into_iter().map(|d| d.join(DEMO_BINARY)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_beside_the_executable_and_above_cargo_deps() {
        assert_eq!(
            candidates(Some(Path::new("/t/debug/deps/images-1234"))),
            [
                "/t/debug/deps/k8rs-demo",
                "/t/debug/k8rs-demo",
                "/usr/local/bin/k8rs-demo"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            candidates(Some(Path::new("/usr/local/bin/k8rs"))),
            [PathBuf::from("/usr/local/bin/k8rs-demo")]
        );
    }

    #[test]
    fn missing_binary_names_where_it_looked() {
        let err = find_demo_binary(Some(Path::new("/nonexistent/k8rs-demo"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "k8rs-demo not found (looked at /nonexistent/k8rs-demo): build it with \
             `cargo build --bin k8rs-demo`, or install it beside k8rs (scripts/install.sh does)"
        );
    }
}
