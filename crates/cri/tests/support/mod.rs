//! The test node: a containerd of its own in a tempdir, a bridge CNI config, the
//! builtin images, and a teardown that leaves nothing behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cri::containerd::{Cleaned, Config, Containerd, force_cleanup};
use cri::images::install_builtin;
use cri::v1::*;
use cri::{CriClient, RuntimeService, image_spec};

/// Tests share the bridge and subnet, and `scripts/test.sh` runs two test threads:
/// a node holds this for its whole life.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const BRIDGE: &str = "cni-test0";
pub const SUBNET: &str = "10.88.77.0/24";

/// One node's runtime: a containerd in a tempdir with a bridge CNI config and the
/// builtin images. Dropping it removes every sandbox, stops containerd, unmounts what
/// containerd left, and deletes the bridge, so runs can repeat.
pub struct Node {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    pub dir: tempfile::TempDir,
    pub containerd: Option<Containerd>,
    pub client: CriClient,
}

impl Node {
    pub async fn start() -> Node {
        let serial = SERIAL.lock().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let cni = dir.path().join("cni");
        std::fs::create_dir_all(&cni).unwrap();
        let ipam = dir.path().join("ipam");
        // containerd's CRI adds the loopback network itself (go-cni's WithLoNetwork) and
        // loads only the first conflist, so this one file configures the pod network.
        let conflist = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "cni-test",
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": true, "ipMasq": false,
                "ipam": {
                    "type": "host-local", "ranges": [[{ "subnet": SUBNET }]],
                    "routes": [{ "dst": "0.0.0.0/0" }], "dataDir": ipam,
                },
            }],
        });
        std::fs::write(cni.join("10-test.conflist"), conflist.to_string()).unwrap();

        let t = Instant::now();
        let containerd = Containerd::start(Config::new(dir.path().join("containerd"), &cni))
            .await
            .unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
        let started = t.elapsed();
        let client = containerd.client().clone();
        let t = Instant::now();
        install_builtin(&client, &dir.path().join("images"))
            .await
            .unwrap_or_else(|e| panic!("cannot install the builtin images: {e}"));
        eprintln!(
            "containerd ready in {started:?}; images built and imported in {:?}",
            t.elapsed()
        );
        Node {
            _serial: serial,
            dir,
            containerd: Some(containerd),
            client,
        }
    }

    pub fn sandbox_config(&self, name: &str) -> PodSandboxConfig {
        let logs = self.dir.path().join("logs").join(name);
        std::fs::create_dir_all(&logs).unwrap();
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: logs.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(own_pid_namespace()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn log_file(&self, pod: &str, log_path: &str) -> PathBuf {
        self.dir.path().join("logs").join(pod).join(log_path)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        tear_down(self.containerd.take(), BRIDGE);
    }
}

/// Stops what a test node ran: its pods and containerd through CRI, then whatever the
/// graceful path missed (a test that panicked mid-way), then its bridge.
pub fn tear_down(containerd: Option<Containerd>, bridge: &str) {
    let config = containerd.as_ref().map(|c| c.config().clone());
    // Drop cannot await, and the test's runtime (blocked here) still drives the
    // test's client: a thread with its own runtime and its own client can.
    let teardown = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Some(c) = containerd else { return };
            if let Ok(client) = CriClient::connect(c.socket()).await {
                for pod in client.list_pod_sandbox(None).await.unwrap_or_default() {
                    let _ = client.stop_pod_sandbox(&pod.id).await;
                    let _ = client.remove_pod_sandbox(&pod.id).await;
                }
            }
            let _ = c.stop(Duration::from_secs(5)).await;
        });
    });
    let _ = teardown.join();
    if let Some(config) = config {
        match force_cleanup(&config) {
            Ok(c) if c == Cleaned::default() => {}
            Ok(c) => eprintln!("forced cleanup: {c:?}"),
            Err(e) => eprintln!("forced cleanup failed: {e}"),
        }
    }
    let _ = std::process::Command::new("ip")
        .args(["link", "del", bridge])
        .output();
}

pub fn container_config(name: &str, image: &str, command: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(image_spec(image)),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(own_pid_namespace()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the kubelet sends unless `shareProcessNamespace`: each container its own PID
/// namespace. CRI's zero value is POD (one namespace with pause as PID 1).
pub fn own_pid_namespace() -> NamespaceOption {
    NamespaceOption {
        pid: NamespaceMode::Container as i32,
        ..Default::default()
    }
}

/// Polls ContainerStatus until `done` holds (containerd has no "wait" call in CRI).
pub async fn wait_status(
    client: &CriClient,
    id: &str,
    timeout: Duration,
    done: impl Fn(&ContainerStatus) -> bool,
) -> ContainerStatus {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client.container_status(id).await.expect("ContainerStatus");
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} still {status:?} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn state(s: &ContainerStatus) -> ContainerState {
    ContainerState::try_from(s.state).unwrap_or(ContainerState::ContainerUnknown)
}

/// Live (not zombie) shim processes whose `-address` is `socket`.
pub fn shims_serving(socket: &str) -> usize {
    let needle = format!("-address\0{socket}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            cmd.starts_with(b"/usr/bin/containerd-shim")
                && String::from_utf8_lossy(&cmd).contains(&needle)
        })
        .count()
}
