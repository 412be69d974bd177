//! `k8rs server --datastore-endpoint` against a real etcd: objects land under
//! upstream's key layout (`/registry/<resource>/<namespace>/<name>`), and an etcd that
//! cannot be reached stops start-up with a clear message. Needs `etcd` and `etcdctl`.

#[path = "../../store/tests/support/etcd.rs"]
mod etcd;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd::{EtcdCluster, find_on_path};
use support::{Opts, Server};

fn etcdctl_keys(endpoint: &str, prefix: &str) -> String {
    let etcdctl = find_on_path("etcdctl").unwrap_or_else(|| {
        panic!("`etcdctl` is not on PATH; install etcd-client (`apt-get install -y etcd-client`)")
    });
    let out = Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            endpoint,
            "get",
            prefix,
            "--prefix",
            "--keys-only",
        ])
        .output()
        .expect("run etcdctl");
    assert!(
        out.status.success(),
        "etcdctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn objects_are_stored_in_etcd_under_registry_keys() {
    let etcd = EtcdCluster::start(1);
    let endpoint = etcd.endpoint(0);
    let s = Server::start_with(Opts {
        args: vec!["--datastore-endpoint".into(), endpoint.clone()],
    });
    s.kubectl_ok(&[
        "create",
        "configmap",
        "etcd-check",
        "--from-literal=greeting=hello",
    ]);
    let keys = etcdctl_keys(&endpoint, "/registry");
    assert!(
        keys.lines()
            .any(|k| k == "/registry/configmaps/default/etcd-check"),
        "configmap key missing from etcd:\n{keys}"
    );
    // Bootstrap objects take the same layout.
    assert!(
        keys.lines()
            .any(|k| k == "/registry/namespaces/kube-system"),
        "{keys}"
    );
    let got = s.kubectl_ok(&[
        "get",
        "configmap",
        "etcd-check",
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    assert_eq!(got, "hello");
}

#[test]
fn unreachable_etcd_fails_start_up_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .arg("server")
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--https-listen-port", "0", "--bind-address", "127.0.0.1"])
        .args(["--advertise-address", "127.0.0.1", "--disable-agent"])
        .args(["--no-merge-kubeconfig", "--write-kubeconfig"])
        .arg(dir.path().join("kubeconfig.yaml"))
        .args(["--datastore-endpoint", &format!("http://127.0.0.1:{port}")])
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start k8rs server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server neither started nor failed within 30s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("cannot use the etcd datastore") && stderr.contains("cannot be reached"),
        "{stderr}"
    );
}
