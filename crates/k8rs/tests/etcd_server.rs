//! `k8rs server --datastore-endpoint` against a real etcd: objects land under
//! upstream's key layout (`/registry/<resource>/<namespace>/<name>`), an etcd that
//! cannot be reached stops start-up with a clear message, and an etcd serving TLS
//! with client-certificate authentication is used through `--datastore-cafile`,
//! `--datastore-certfile` and `--datastore-keyfile`. Needs `etcd` and `etcdctl`.

#[path = "../../store/tests/support/etcd.rs"]
mod etcd;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd::{EtcdCluster, find_on_path};
use support::{Opts, Server};

/// `etcdctl` against `endpoint` with `args`, e.g. TLS flags then the command.
fn etcdctl(endpoint: &str, args: &[&str]) -> std::process::Output {
    let etcdctl = find_on_path("etcdctl").unwrap_or_else(|| {
        panic!("`etcdctl` is not on PATH; install etcd-client (`apt-get install -y etcd-client`)")
    });
    Command::new(etcdctl)
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint])
        .args(args)
        .output()
        .expect("run etcdctl")
}

fn etcdctl_keys(endpoint: &str, tls: &[&str], prefix: &str) -> String {
    let out = etcdctl(
        endpoint,
        &[tls, &["get", prefix, "--prefix", "--keys-only"]].concat(),
    );
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
    let keys = etcdctl_keys(&endpoint, &[], "/registry");
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

/// Starts `k8rs server` with `datastore` flags, expects it to fail, returns its stderr.
fn failed_start_up(datastore: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .arg("server")
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--https-listen-port", "0", "--bind-address", "127.0.0.1"])
        .args(["--advertise-address", "127.0.0.1", "--disable-agent"])
        .args(["--no-merge-kubeconfig", "--write-kubeconfig"])
        .arg(dir.path().join("kubeconfig.yaml"))
        .args(datastore)
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start k8rs server");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server neither started nor failed within 60s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    assert!(!status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unreachable_etcd_fails_start_up_clearly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stderr = failed_start_up(&["--datastore-endpoint", &format!("http://127.0.0.1:{port}")]);
    assert!(
        stderr.contains("cannot use the etcd datastore") && stderr.contains("cannot be reached"),
        "{stderr}"
    );
}

/// One etcd member serving clients over TLS, requiring client certificates signed
/// by its CA; killed on drop.
struct TlsEtcd {
    child: std::process::Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl TlsEtcd {
    fn start() -> TlsEtcd {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::CertificateAuthority::generate("etcd-ca").unwrap();
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let server = ca
            .issue(&pki::LeafSpec::server("etcd", &[], &[ip]))
            .unwrap();
        let client = ca.issue(&pki::LeafSpec::client("k8rs", &[])).unwrap();
        let write = |name: &str, pem: &str| std::fs::write(dir.path().join(name), pem).unwrap();
        write("ca.crt", &ca.cert_and_key().cert_pem);
        write("server.crt", &server.cert_pem);
        write("server.key", &server.key_pem);
        write("client.crt", &client.cert_pem);
        write("client.key", &client.key_pem);
        let port = |_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (client_port, peer_port) = (port(0), port(1));
        let endpoint = format!("https://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
        let child = Command::new(etcd::etcd_binary())
            .args(["--name", "m0", "--data-dir", &path("data")])
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("m0={peer}")])
            .args([
                "--cert-file",
                &path("server.crt"),
                "--key-file",
                &path("server.key"),
            ])
            .args(["--client-cert-auth", "--trusted-ca-file", &path("ca.crt")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let etcd = TlsEtcd {
            child,
            endpoint,
            dir,
        };
        support::wait_for("etcd healthy over TLS", Duration::from_secs(30), || {
            let mut args = etcd.tls_flags();
            args.extend(["endpoint".into(), "health".into()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = etcdctl(&etcd.endpoint, &args);
            out.status.success().then_some(())
        });
        etcd
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// etcdctl's flags for the client certificate.
    fn tls_flags(&self) -> Vec<String> {
        let f = |n: &str| self.file(n);
        vec![
            "--cacert".into(),
            f("ca.crt"),
            "--cert".into(),
            f("client.crt"),
            "--key".into(),
            f("client.key"),
        ]
    }
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_etcd_with_client_certificates() {
    let etcd = TlsEtcd::start();
    let (ca, cert, key) = (
        etcd.file("ca.crt"),
        etcd.file("client.crt"),
        etcd.file("client.key"),
    );
    let server = Server::start_with(Opts {
        args: vec![
            "--datastore-endpoint".into(),
            etcd.endpoint.clone(),
            format!("--datastore-cafile={ca}"),
            format!("--datastore-certfile={cert}"),
            format!("--datastore-keyfile={key}"),
        ],
    });
    server.kubectl_ok(&["create", "configmap", "over-tls", "--from-literal=a=b"]);
    let tls = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    let keys = etcdctl_keys(&etcd.endpoint, &tls, "/registry/configmaps/default/");
    assert!(
        keys.lines()
            .any(|k| k == "/registry/configmaps/default/over-tls"),
        "{keys}"
    );
    drop(server);

    // Without a client certificate etcd refuses the handshake: start-up fails and says so.
    let stderr = failed_start_up(&[
        "--datastore-endpoint",
        &etcd.endpoint,
        &format!("--datastore-cafile={ca}"),
    ]);
    assert!(stderr.contains("cannot use the etcd datastore"), "{stderr}");
}
