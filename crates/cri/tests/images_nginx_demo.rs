//! The nginx and k8rs/demo builtin images in real containers: a containerd of the
//! test's own, a CNI bridge of its own (`k8rs-img0`, 10.191.0.0/24, apart from the other
//! tests' so they can run beside these), the images built from the host's files and
//! imported, then fetched over the pod network. Needs root, scripts/deps.sh and the
//! `k8rs-demo` binary built (`cargo build --bins`, as scripts/test.sh does first); fails
//! (never skips) without them.

#[allow(dead_code)]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cri::containerd::{Config, Containerd};
use cri::images::{DEMO_IMAGE, Extras, NGINX_IMAGE, install_images};
use cri::v1::*;
use cri::{CriClient, ImageService, RuntimeService, image_spec};
use support::{container_config, own_pid_namespace, state, tear_down, wait_status};

const BRIDGE: &str = "k8rs-img0";
const SUBNET: &str = "10.191.0.0/24";

/// A containerd with this file's bridge network; dropping it removes the sandboxes,
/// stops containerd, cleans what is left and deletes the bridge.
struct ImgNode {
    dir: tempfile::TempDir,
    containerd: Option<Containerd>,
    client: CriClient,
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl ImgNode {
    async fn start() -> ImgNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let cni = dir.path().join("cni");
        std::fs::create_dir_all(&cni).unwrap();
        let conflist = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "k8rs-img",
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": true, "ipMasq": false,
                "ipam": {
                    "type": "host-local", "ranges": [[{ "subnet": SUBNET }]],
                    "routes": [{ "dst": "0.0.0.0/0" }], "dataDir": dir.path().join("ipam"),
                },
            }],
        });
        std::fs::write(cni.join("10-img.conflist"), conflist.to_string()).unwrap();
        let containerd = Containerd::start(Config::new(dir.path().join("containerd"), &cni))
            .await
            .unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
        let client = containerd.client().clone();
        ImgNode {
            dir,
            containerd: Some(containerd),
            client,
        }
    }

    fn sandbox_config(&self, name: &str) -> PodSandboxConfig {
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

    fn log(&self, pod: &str, container: &str) -> String {
        let path = self
            .dir
            .path()
            .join("logs")
            .join(pod)
            .join(format!("{container}/0.log"));
        std::fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for ImgNode {
    fn drop(&mut self) {
        tear_down(self.containerd.take(), BRIDGE);
    }
}

/// `GET path` over HTTP/1.0, retried until it answers or `timeout` passes (the server
/// in the container may not listen yet).
fn http_get(ip: &str, port: u16, path: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = || -> std::io::Result<String> {
            let addr = format!("{ip}:{port}").parse().unwrap();
            let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(conn, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
            let mut out = String::new();
            conn.read_to_string(&mut out)?;
            Ok(out)
        };
        match attempt() {
            Ok(out) => return out,
            Err(e) if Instant::now() >= deadline => {
                panic!("GET http://{ip}:{port}{path}: {e} (for {timeout:?})")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

async fn get(ip: &str, port: u16, path: &str, timeout: Duration) -> String {
    let (ip, path) = (ip.to_string(), path.to_string());
    tokio::task::spawn_blocking(move || http_get(&ip, port, &path, timeout))
        .await
        .unwrap()
}

/// Runs `image` (its own command) in a new pod; returns (container id, pod IP).
async fn run(node: &ImgNode, pod_name: &str, image: &str) -> (String, String) {
    let client = &node.client;
    let sandbox = node.sandbox_config(pod_name);
    let pod = client.run_pod_sandbox(sandbox.clone(), "").await.unwrap();
    let status = client
        .pod_sandbox_status(&pod)
        .await
        .unwrap()
        .status
        .unwrap();
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        ip.starts_with("10.191.0."),
        "sandbox IP {ip:?} not in {SUBNET}"
    );
    let id = client
        .create_container(&pod, container_config(pod_name, image, &[]), sandbox)
        .await
        .unwrap();
    client.start_container(&id).await.unwrap();
    wait_status(client, &id, Duration::from_secs(10), |s| {
        state(s) == ContainerState::ContainerRunning
    })
    .await;
    (id, ip)
}

/// Stops a container with a generous grace period: a server that handles SIGTERM (as
/// PID 1 it must install a handler) exits 0 well before it.
async fn assert_stops_on_sigterm(node: &ImgNode, id: &str) {
    let t = Instant::now();
    node.client
        .stop_container(id, Duration::from_secs(20))
        .await
        .unwrap();
    let took = t.elapsed();
    let stopped = node.client.container_status(id).await.unwrap();
    assert_eq!(state(&stopped), ContainerState::ContainerExited);
    assert_eq!(stopped.exit_code, 0, "{stopped:?}");
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
}

#[tokio::test]
async fn nginx_and_demo_images_serve_in_pods() {
    let _serial = SERIAL.lock().await;
    let node = ImgNode::start().await;
    let client = &node.client;
    let t = Instant::now();
    let installed = install_images(client, &node.dir.path().join("images"), &Extras::default())
        .await
        .unwrap_or_else(|e| panic!("cannot install the builtin images: {e}"));
    eprintln!("images built and imported in {:?}", t.elapsed());
    assert!(
        installed.skipped.is_empty(),
        "optional images left out: {:?}",
        installed
            .skipped
            .iter()
            .map(|(n, e)| format!("{n}: {e}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(installed.imported.len(), 4, "{installed:?}");
    for name in [NGINX_IMAGE, DEMO_IMAGE] {
        let built = installed.images.iter().find(|b| b.name == name).unwrap();
        let img = client.image_status(image_spec(name)).await.unwrap();
        assert_eq!(
            img.map(|i| i.id),
            Some(built.config_digest.clone()),
            "{name}"
        );
    }
    // Short names resolve as the kubelet passes them on (docker.io/library/ implied).
    assert!(
        client
            .image_status(image_spec("nginx"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        client
            .image_status(image_spec("k8rs/demo"))
            .await
            .unwrap()
            .is_some()
    );

    // Installing again finds every image there with the same digest: nothing imported.
    let t = Instant::now();
    let again = install_images(client, &node.dir.path().join("images"), &Extras::default())
        .await
        .unwrap();
    eprintln!("second install in {:?}", t.elapsed());
    assert_eq!(again.imported, Vec::<String>::new());
    assert_eq!(again.images, installed.images);

    let (nginx, ip) = run(&node, "web", NGINX_IMAGE).await;
    let page = get(&ip, 80, "/", Duration::from_secs(10)).await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("Welcome to nginx!"), "{page}");
    let missing = get(&ip, 80, "/nothing-here", Duration::from_secs(5)).await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // Access log on stdout, error log on stderr, as the official image does.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = node.log("web", "web");
        if log.contains(" stdout F ") && log.contains("\"GET / HTTP/1.0\" 200") {
            assert!(
                log.contains(" stderr F "),
                "error log (notices) on stderr: {log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no access log line: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The workers run as www-data.
    let ps = client
        .exec_sync(&nginx, vec!["ps".into()], Duration::from_secs(10))
        .await
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        ps.contains("www-data") && ps.contains("nginx: worker process"),
        "{ps}"
    );
    assert_stops_on_sigterm(&node, &nginx).await;

    let (demo, ip) = run(&node, "demo", DEMO_IMAGE).await;
    let hello = get(&ip, 8080, "/demo/hello", Duration::from_secs(10)).await;
    assert!(hello.starts_with("HTTP/1.1 200 OK"), "{hello}");
    assert!(hello.ends_with("\r\n\r\nhello, world!\n"), "{hello}");
    let health = get(&ip, 8080, "/healthz", Duration::from_secs(5)).await;
    assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
    let log = node.log("demo", "demo");
    assert!(log.contains("\"GET /demo/hello HTTP/1.0\" 200"), "{log}");
    assert_stops_on_sigterm(&node, &demo).await;
}

#[tokio::test]
async fn missing_optional_images_are_skipped_with_the_fix_named() {
    let _serial = SERIAL.lock().await;
    let node = ImgNode::start().await;
    let extras = Extras {
        nginx_root: "/nonexistent/nginx".into(),
        demo_binary: Some("/nonexistent/k8rs-demo".into()),
    };
    let installed = install_images(&node.client, &node.dir.path().join("images"), &extras)
        .await
        .unwrap();
    let skipped: Vec<String> = installed
        .skipped
        .iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    assert_eq!(
        skipped,
        [
            "docker.io/library/nginx:latest: nginx file /nonexistent/nginx/usr/sbin/nginx not found: \
             run scripts/deps.sh (it unpacks Debian's nginx and nginx-common packages there)",
            "docker.io/k8rs/demo:latest: k8rs-demo not found (looked at /nonexistent/k8rs-demo): \
             build it with `cargo build --bin k8rs-demo`, or install it beside k8rs (scripts/install.sh does)"
        ]
    );
    assert_eq!(
        installed.imported.len(),
        2,
        "busybox and pause: {installed:?}"
    );
}
