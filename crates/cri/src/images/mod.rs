//! OCI images built on the node, because no registry is reachable: a file list becomes
//! one gzip'd layer, and images are written as an OCI image-layout archive that
//! `ctr images import` loads into containerd.
//!
//! Archives are reproducible (zero mtimes, sorted entries), so the same inputs give the
//! same digests and re-importing is a no-op.

mod builtin;
mod demo;
mod layout;
mod libs;
mod nginx;

use std::path::PathBuf;

pub use builtin::{
    BUSYBOX_IMAGE, Extras, Installed, PAUSE_IMAGE, busybox_image, import, install_builtin,
    install_images, pause_image,
};
pub use demo::{DEMO_BINARY, DEMO_IMAGE, demo_image, find_demo_binary};
pub use layout::{Built, Prepared, prepare, write_archive, write_prepared};
pub use libs::shared_libraries;
pub use nginx::{DEFAULT_NGINX_ROOT, NGINX_IMAGE, nginx_image};

/// Errors building or importing images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An image path must be absolute and must not climb out of the root.
    #[error("invalid image path {0:?}")]
    BadPath(String),
    /// A binary the builder runs (busybox, ctr) is missing.
    #[error("{binary} not found on PATH; install the {package} package")]
    NotFound {
        binary: String,
        package: &'static str,
    },
    /// A file an image is made from is missing.
    #[error("{what} {path} not found: {fix}")]
    Missing {
        what: &'static str,
        path: PathBuf,
        fix: &'static str,
    },
    /// The demo app's binary is in none of the places looked at.
    #[error(
        "{bin} not found (looked at {}): build it with `cargo build --bin {bin}`, or install it beside k8rs (scripts/install.sh does)",
        looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        bin = demo::DEMO_BINARY
    )]
    DemoNotFound { looked: Vec<PathBuf> },
    /// The shared libraries of a binary could not be resolved.
    #[error("cannot resolve the shared libraries of {binary}: {detail}")]
    Ldd { binary: PathBuf, detail: String },
    /// `ctr images import` failed.
    #[error("{command} failed ({status}): {stderr}")]
    Import {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    /// The import succeeded but CRI does not resolve the name.
    #[error("image {name} imported but CRI ImageStatus does not find it: {detail}")]
    NotVisible { name: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One file system entry of an image.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Absolute path inside the image.
    pub path: String,
    pub kind: EntryKind,
}

#[derive(Clone, Debug)]
pub enum EntryKind {
    /// A file copied from the host, keeping its permission bits.
    HostFile(PathBuf),
    /// A file with the given content and mode.
    Bytes { data: Vec<u8>, mode: u32 },
    /// A symbolic link to `target`.
    Symlink(String),
    /// A directory with the given mode (parents of other entries are created 0755).
    Dir(u32),
}

impl Entry {
    pub fn host_file(path: &str, host: impl Into<PathBuf>) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::HostFile(host.into()),
        }
    }

    pub fn bytes(path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::Bytes {
                data: data.into(),
                mode,
            },
        }
    }

    pub fn symlink(path: &str, target: &str) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink(target.into()),
        }
    }

    pub fn dir(path: &str, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir(mode),
        }
    }
}

/// An image to build: a name, one layer's entries, and the process config.
#[derive(Clone, Debug, Default)]
pub struct OciImage {
    /// Full reference, e.g. `docker.io/library/busybox:latest`.
    pub name: String,
    pub entries: Vec<Entry>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
}
