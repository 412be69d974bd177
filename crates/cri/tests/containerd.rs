//! Real containerd, real runc, real CNI bridge: each test starts its own containerd in a
//! tempdir. Needs root and the packages of scripts/deps.sh; fails (never skips) without
//! them. Nodes serialise themselves (they share a bridge name and subnet).

mod support;

use std::time::{Duration, Instant};

use cri::containerd::{Config, Containerd, force_cleanup};
use cri::images::{BUSYBOX_IMAGE, PAUSE_IMAGE};
use cri::mounts::mount_points_under;
use cri::v1::*;
use cri::{ImageService, RuntimeService, image_spec};
use support::*;

#[test]
fn missing_containerd_is_named() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("c"), dir.path().join("cni"));
    config.binary = "containerd-that-is-not-installed".into();
    let err = rt.block_on(Containerd::start(config)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "containerd-that-is-not-installed not found on PATH; install the containerd package"
    );
}

#[test]
fn containerd_exiting_at_startup_is_reported() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("c"), dir.path().join("cni"));
    config.binary = "/bin/false".into();
    let t = Instant::now();
    let err = rt.block_on(Containerd::start(config)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/bin/false exited during startup (exit status: 1)"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "noticed after {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn pod_lifecycle_with_logs_exec_and_network() {
    let node = Node::start().await;
    let client = &node.client;

    let version = client.version().await.unwrap();
    assert_eq!(version.runtime_name, "containerd");
    // The node's readiness: NetworkReady needs the CNI config to have been loaded.
    let conditions = client.status().await.unwrap().status.unwrap().conditions;
    for kind in ["RuntimeReady", "NetworkReady"] {
        let c = conditions.iter().find(|c| c.r#type == kind);
        assert!(c.is_some_and(|c| c.status), "{kind} in {conditions:?}");
    }
    let images = client.list_images(None).await.unwrap();
    for name in [BUSYBOX_IMAGE, PAUSE_IMAGE] {
        assert!(
            images.iter().any(|i| i.repo_tags.iter().any(|t| t == name)),
            "{name} not in ListImages: {images:?}"
        );
    }

    let sandbox = node.sandbox_config("web");
    let t = Instant::now();
    let pod = client.run_pod_sandbox(sandbox.clone(), "").await.unwrap();
    let sandbox_time = t.elapsed();
    let status = client
        .pod_sandbox_status(&pod)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxReady as i32);
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        ip.starts_with("10.88.77."),
        "sandbox IP {ip:?} not in {SUBNET}"
    );

    let cmd = ["sh", "-c", "echo hello; sleep 3600"];
    let t = Instant::now();
    let id = client
        .create_container(
            &pod,
            container_config("hello", BUSYBOX_IMAGE, &cmd),
            sandbox.clone(),
        )
        .await
        .unwrap();
    let create_time = t.elapsed();
    let t = Instant::now();
    client.start_container(&id).await.unwrap();
    let start_time = t.elapsed();
    let running = wait_status(client, &id, Duration::from_secs(10), |s| {
        state(s) == ContainerState::ContainerRunning
    })
    .await;
    eprintln!(
        "RunPodSandbox {sandbox_time:?}, CreateContainer {create_time:?}, StartContainer {start_time:?}, IP {ip}"
    );
    assert_eq!(
        running.image.as_ref().map(|i| i.image.as_str()),
        Some(BUSYBOX_IMAGE)
    );

    // The CRI log format: `<RFC 3339 time> <stream> <P|F> <text>`.
    let log = node.log_file("web", "hello/0.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = text.lines().next() {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line in {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let fields: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!(fields[1..], ["stdout", "F", "hello"], "log line {line:?}");
    assert!(
        fields[0].contains('T') && fields[0].ends_with('Z'),
        "time in {line:?}"
    );

    let exec = |cmd: &[&str]| {
        client.exec_sync(
            &id,
            cmd.iter().map(|s| s.to_string()).collect(),
            Duration::from_secs(10),
        )
    };
    let out = exec(&["echo", "hi"]).await.unwrap();
    assert_eq!((out.exit_code, out.stdout.as_slice()), (0, &b"hi\n"[..]));
    let lo = exec(&["ip", "-o", "addr", "show", "lo"]).await.unwrap();
    assert!(
        String::from_utf8_lossy(&lo.stdout).contains("127.0.0.1"),
        "{lo:?}"
    );
    let eth = exec(&["ip", "-o", "-4", "addr", "show", "eth0"])
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&eth.stdout).contains(&ip),
        "{eth:?}"
    );
    let failing = exec(&["sh", "-c", "echo oops >&2; exit 3"]).await.unwrap();
    assert_eq!(
        (failing.exit_code, failing.stderr.as_slice()),
        (3, &b"oops\n"[..])
    );

    // busybox sh execs its last command, so `sleep` is PID 1 of its own namespace and,
    // without a handler, ignores SIGTERM: the stop ends in SIGKILL after the timeout.
    let t = Instant::now();
    client
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let stopped = client.container_status(&id).await.unwrap();
    eprintln!(
        "StopContainer (SIGTERM ignored) {:?}: exit {} reason {:?}",
        t.elapsed(),
        stopped.exit_code,
        stopped.reason
    );
    assert_eq!(state(&stopped), ContainerState::ContainerExited);
    assert_eq!(stopped.exit_code, 137);
    client.remove_container(&id).await.unwrap();
    let err = client.container_status(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // Our pause process exits 0 on SIGTERM, as upstream's does.
    let pause = client
        .create_container(&pod, container_config("pause", PAUSE_IMAGE, &[]), sandbox)
        .await
        .unwrap();
    client.start_container(&pause).await.unwrap();
    wait_status(client, &pause, Duration::from_secs(10), |s| {
        state(s) == ContainerState::ContainerRunning
    })
    .await;
    let t = Instant::now();
    client
        .stop_container(&pause, Duration::from_secs(10))
        .await
        .unwrap();
    let took = t.elapsed();
    let stopped = client.container_status(&pause).await.unwrap();
    assert_eq!(
        (stopped.exit_code, stopped.reason.as_str()),
        (0, "Completed")
    );
    assert!(took < Duration::from_secs(5), "pause took {took:?} to stop");

    assert_eq!(client.list_containers(None).await.unwrap().len(), 1);
    client.stop_pod_sandbox(&pod).await.unwrap();
    let status = client
        .pod_sandbox_status(&pod)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.state, PodSandboxState::SandboxNotready as i32);
    client.remove_pod_sandbox(&pod).await.unwrap();
    assert!(client.list_pod_sandbox(None).await.unwrap().is_empty());
    assert!(client.list_containers(None).await.unwrap().is_empty());
    // Removing twice is fine: the kubelet retries removals.
    client.remove_pod_sandbox(&pod).await.unwrap();

    client
        .remove_image(image_spec(BUSYBOX_IMAGE))
        .await
        .unwrap();
    assert_eq!(
        client
            .image_status(image_spec(BUSYBOX_IMAGE))
            .await
            .unwrap(),
        None
    );
    client
        .remove_image(image_spec(BUSYBOX_IMAGE))
        .await
        .unwrap();
}

#[tokio::test]
async fn memory_limit_ends_in_oom_killed() {
    let node = Node::start().await;
    let client = &node.client;
    let sandbox = node.sandbox_config("hog");
    let pod = client.run_pod_sandbox(sandbox.clone(), "").await.unwrap();

    let cmd = [
        "sh",
        "-c",
        r#"x=$(head -c 100m /dev/zero | tr "\0" a); echo survived"#,
    ];
    let mut config = container_config("hog", BUSYBOX_IMAGE, &cmd);
    config.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        ..Default::default()
    });
    let id = client
        .create_container(&pod, config, sandbox)
        .await
        .unwrap();
    client.start_container(&id).await.unwrap();
    let t = Instant::now();
    let exited = wait_status(client, &id, Duration::from_secs(20), |s| {
        state(s) == ContainerState::ContainerExited
    })
    .await;
    eprintln!(
        "exited after {:?}: code {} reason {:?} message {:?}",
        t.elapsed(),
        exited.exit_code,
        exited.reason,
        exited.message
    );
    assert_eq!(exited.reason, "OOMKilled", "{exited:?}");
    assert_eq!(exited.exit_code, 137);
    let log = std::fs::read_to_string(node.log_file("hog", "hog/0.log")).unwrap_or_default();
    assert!(!log.contains("survived"), "{log}");
}

/// Containers outlive a killed containerd (their shims are separate processes);
/// `force_cleanup` must end them, their shims and their mounts.
#[tokio::test]
async fn force_cleanup_ends_what_a_killed_containerd_left() {
    let mut node = Node::start().await;
    let client = node.client.clone();
    let sandbox = node.sandbox_config("orphan");
    let pod = client.run_pod_sandbox(sandbox.clone(), "").await.unwrap();
    let config = container_config("sleeper", BUSYBOX_IMAGE, &["sleep", "3600"]);
    let id = client
        .create_container(&pod, config, sandbox)
        .await
        .unwrap();
    client.start_container(&id).await.unwrap();
    let running = |s: &ContainerStatus| state(s) == ContainerState::ContainerRunning;
    wait_status(&client, &id, Duration::from_secs(10), running).await;

    let containerd = node.containerd.take().unwrap();
    let config = containerd.config().clone();
    drop(containerd); // SIGKILL
    let socket = config.socket().display().to_string();
    assert_eq!(
        shims_serving(&socket),
        1,
        "the pod's shim survives containerd"
    );
    assert!(!mount_points_under(&config.state_dir).unwrap().is_empty());

    let t = Instant::now();
    let cleaned = force_cleanup(&config).unwrap();
    eprintln!("force_cleanup {:?}: {cleaned:?}", t.elapsed());
    assert_eq!(
        (cleaned.containers, cleaned.shims),
        (2, 1),
        "pause + sleeper, one shim"
    );
    assert!(cleaned.mounts >= 3, "shm, netns, rootfs: {cleaned:?}");
    assert!(mount_points_under(&config.state_dir).unwrap().is_empty());
    assert_eq!(shims_serving(&socket), 0);
}
