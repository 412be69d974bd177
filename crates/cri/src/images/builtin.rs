//! The images every node has without a registry: busybox, and the pause image, both
//! from Debian's static /bin/busybox (package busybox-static), which are mandatory;
//! and nginx and k8rs/demo, which are installed when their files are there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::demo::{demo_image, find_demo_binary};
use super::layout::{Prepared, prepare, write_prepared};
use super::nginx::{DEFAULT_NGINX_ROOT, nginx_image};
use super::{Built, DEMO_IMAGE, Entry, Error, NGINX_IMAGE, OciImage, Result};
use crate::containerd;
use crate::{CriClient, ImageService, image_spec};

pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:latest";
/// The sandbox image containerd is configured with; upstream's current pause tag.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

pub(super) const PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Sleeps until told to stop, and then exits 0 as upstream's pause does. The shell is
/// PID 1 of the pod, which ignores signals without a handler, hence the trap; `wait`
/// returns at once when the trapped signal arrives, unlike a foreground `sleep`.
const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// busybox with a symlink for every applet it reports (`busybox --list-full`).
pub fn busybox_image(busybox: &Path) -> Result<OciImage> {
    let out = std::process::Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| io("cannot run", busybox, e))?;
    let mut entries = base_entries(busybox);
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let path = format!("/{}", applet.trim());
        if path != "/bin/busybox" && path.len() > 1 {
            entries.push(Entry::symlink(&path, "/bin/busybox"));
        }
    }
    entries.extend([
        Entry::dir("/root", 0o700),
        Entry::dir("/var", 0o755),
        Entry::dir("/home", 0o755),
        Entry::bytes(
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
            0o644,
        ),
        Entry::bytes("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
    ]);
    Ok(OciImage {
        name: BUSYBOX_IMAGE.into(),
        entries,
        cmd: vec!["sh".into()],
        env: vec![PATH_ENV.into()],
        working_dir: "/".into(),
        ..Default::default()
    })
}

/// The pause image: busybox's shell and sleep only.
pub fn pause_image(busybox: &Path) -> OciImage {
    let mut entries = base_entries(busybox);
    entries.push(Entry::symlink("/bin/sh", "/bin/busybox"));
    entries.push(Entry::symlink("/bin/sleep", "/bin/busybox"));
    OciImage {
        name: PAUSE_IMAGE.into(),
        entries,
        entrypoint: vec!["/bin/sh".into(), "-c".into(), PAUSE_SCRIPT.into()],
        env: vec![PATH_ENV.into()],
        working_dir: "/".into(),
        ..Default::default()
    }
}

/// The binary, and the directories runc and the CRI expect to mount over.
fn base_entries(busybox: &Path) -> Vec<Entry> {
    vec![
        Entry::host_file("/bin/busybox", busybox),
        Entry::dir("/tmp", 0o1777),
        Entry::dir("/etc", 0o755),
        Entry::dir("/dev", 0o755),
        Entry::dir("/proc", 0o555),
        Entry::dir("/sys", 0o555),
    ]
}

/// Loads an OCI archive into containerd's `k8s.io` namespace (the CRI's), unpacked for
/// the default (overlayfs) snapshotter. CRI has no import call; `ctr` ships with
/// containerd and speaks its native API on the same socket. Takes OCI image-layout and
/// docker-archive (`docker save`) tarballs; returns what ctr printed (a line per image).
pub async fn import(socket: &Path, archive: &Path) -> Result<String> {
    let ctr = find_binary("ctr", "containerd")?;
    let mut cmd = tokio::process::Command::new(&ctr);
    cmd.arg("--address")
        .arg(socket)
        .args(["-n", "k8s.io", "images", "import"])
        .arg(archive);
    let command = format!("{cmd:?}");
    let out = cmd.output().await.map_err(|e| io("cannot run", &ctr, e))?;
    if !out.status.success() {
        return Err(Error::Import {
            command,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where the optional images come from.
#[derive(Clone, Debug)]
pub struct Extras {
    /// Debian's nginx packages unpacked (scripts/deps.sh).
    pub nginx_root: PathBuf,
    /// The `k8rs-demo` binary; `None`: look beside the running executable.
    pub demo_binary: Option<PathBuf>,
}

impl Default for Extras {
    fn default() -> Self {
        Extras {
            nginx_root: DEFAULT_NGINX_ROOT.into(),
            demo_binary: None,
        }
    }
}

/// What `install_builtin` did.
#[derive(Debug, Default)]
pub struct Installed {
    /// Every image now in containerd, in build order.
    pub images: Vec<Built>,
    /// The names imported by this call; the others were already there, same digest.
    pub imported: Vec<String>,
    /// Optional images left out, and why (each was logged as a warning).
    pub skipped: Vec<(&'static str, Error)>,
}

/// Installs the builtin images with [`Extras::default`]: see [`install_images`].
pub async fn install_builtin(client: &CriClient, work_dir: &Path) -> Result<Installed> {
    install_images(client, work_dir, &Extras::default()).await
}

/// Builds busybox and pause (mandatory: an error fails the call) and nginx and
/// k8rs/demo (optional: an error is logged and the image left out), imports into
/// containerd, via `work_dir/images.tar`, those not already there with the same digest,
/// and waits until CRI's ImageStatus resolves them (its image cache follows
/// containerd's events, so it may lag the import by a moment).
pub async fn install_images(
    client: &CriClient,
    work_dir: &Path,
    extras: &Extras,
) -> Result<Installed> {
    let started = Instant::now();
    let busybox = find_binary("busybox", "busybox-static")?;
    let extras = extras.clone();
    let (prepared, skipped) = tokio::task::spawn_blocking(move || build_all(&busybox, &extras))
        .await
        .expect("image building does not panic")?;
    for (name, e) in &skipped {
        tracing::warn!(image = name, error = %e, "leaving out an optional builtin image");
    }

    let mut needed = Vec::new();
    for p in &prepared {
        let present = client.image_status(image_spec(&p.built.name)).await;
        if !matches!(present, Ok(Some(ref img)) if img.id == p.built.config_digest) {
            needed.push(p);
        }
    }
    if !needed.is_empty() {
        std::fs::create_dir_all(work_dir).map_err(|e| io("cannot create", work_dir, e))?;
        let archive = work_dir.join("images.tar");
        write_prepared(&needed, &archive)?;
        import(client.socket(), &archive).await?;
        for p in &needed {
            wait_visible(client, &p.built).await?;
        }
    }
    let imported: Vec<String> = needed.iter().map(|p| p.built.name.clone()).collect();
    tracing::info!(
        ?imported,
        already_present = prepared.len() - imported.len(),
        elapsed = ?started.elapsed(),
        "builtin images ready"
    );
    Ok(Installed {
        imported,
        images: prepared.into_iter().map(|p| p.built).collect(),
        skipped,
    })
}

type Skipped = Vec<(&'static str, Error)>;

/// Builds every image's blobs, the two optional ones on threads of their own (their
/// layers are the big ones to compress).
fn build_all(busybox: &Path, extras: &Extras) -> Result<(Vec<Prepared>, Skipped)> {
    let optional = |name: &'static str, image: Result<OciImage>| {
        let prepared = image.and_then(|i| prepare(&i));
        prepared.map_err(|e| (name, e))
    };
    let (mandatory, nginx, demo) = std::thread::scope(|s| {
        let nginx =
            s.spawn(|| optional(NGINX_IMAGE, nginx_image(&extras.nginx_root, Some(busybox))));
        let demo = s.spawn(|| {
            let image =
                find_demo_binary(extras.demo_binary.as_deref()).and_then(|b| demo_image(&b));
            optional(DEMO_IMAGE, image)
        });
        let mandatory = busybox_image(busybox)
            .and_then(|b| Ok(vec![prepare(&b)?, prepare(&pause_image(busybox))?]));
        (
            mandatory,
            nginx.join().expect("no panic"),
            demo.join().expect("no panic"),
        )
    });
    let mut prepared = mandatory?;
    let mut skipped = Vec::new();
    for result in [nginx, demo] {
        match result {
            Ok(p) => prepared.push(p),
            Err(s) => skipped.push(s),
        }
    }
    Ok((prepared, skipped))
}

async fn wait_visible(client: &CriClient, built: &Built) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let detail = match client.image_status(image_spec(&built.name)).await {
            Ok(Some(img)) if img.id == built.config_digest => return Ok(()),
            Ok(Some(img)) => format!("id {} (expected {})", img.id, built.config_digest),
            Ok(None) => "no such image".into(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::NotVisible {
                name: built.name.clone(),
                detail,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn find_binary(binary: &str, package: &'static str) -> Result<PathBuf> {
    containerd::find_binary(Path::new(binary), package).map_err(|_| Error::NotFound {
        binary: binary.into(),
        package,
    })
}

fn io(what: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        what,
        path: PathBuf::from(path),
        source,
    }
}
