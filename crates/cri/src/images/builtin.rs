//! The images every node has without a registry: busybox, and the pause image, both
//! from Debian's static /bin/busybox (package busybox-static).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Built, Entry, Error, OciImage, Result, write_archive};
use crate::containerd;
use crate::{CriClient, ImageService, image_spec};

pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:latest";
/// The sandbox image containerd is configured with; upstream's current pause tag.
pub const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
/// containerd and speaks its native API on the same socket.
pub async fn import(socket: &Path, archive: &Path) -> Result<()> {
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
    Ok(())
}

/// Builds the busybox and pause images into `work_dir/images.tar`, imports them, and
/// waits until CRI's ImageStatus resolves both names (its image cache follows
/// containerd's events, so it may lag the import by a moment).
pub async fn install_builtin(client: &CriClient, work_dir: &Path) -> Result<Vec<Built>> {
    let busybox = find_binary("busybox", "busybox-static")?;
    let images = [busybox_image(&busybox)?, pause_image(&busybox)];
    std::fs::create_dir_all(work_dir).map_err(|e| io("cannot create", work_dir, e))?;
    let archive = work_dir.join("images.tar");
    let built = write_archive(&images, &archive)?;
    import(client.socket(), &archive).await?;
    for b in &built {
        wait_visible(client, b).await?;
    }
    Ok(built)
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
