//! Real `etcd` processes for tests: one or a few members on free loopback ports, each
//! with its data in a temporary directory, killed when the handle drops. Start-up and
//! restarts wait on each member's `/health` endpoint with a deadline.
//!
//! Shared by the store's and the k8rs binary's tests (`#[path]`-included there).

#![allow(dead_code)] // each test file uses a different part

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a member may take to report healthy.
const HEALTH_DEADLINE: Duration = Duration::from_secs(30);

/// The `etcd` binary on PATH. Failing (not skipping) when it is missing keeps CI honest:
/// a skipped backend test looks just like a passing one.
pub fn etcd_binary() -> PathBuf {
    find_on_path("etcd").unwrap_or_else(|| {
        panic!(
            "`etcd` is not on PATH; install etcd-server (Debian/Ubuntu: `apt-get install -y etcd-server etcd-client`) to run the etcd backend tests"
        )
    })
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `size` members as one new cluster and waits until each is healthy.
    pub fn start(size: usize) -> Self {
        let binary = etcd_binary();
        let dir = tempfile::tempdir().expect("a temporary directory for etcd");
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                log: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            members,
            initial_cluster,
            _dir: dir,
        };
        for i in 0..size {
            cluster.spawn(&binary, i);
        }
        for i in 0..size {
            cluster.wait_healthy(i);
        }
        cluster
    }

    fn spawn(&mut self, binary: &Path, i: usize) {
        let initial_cluster = self.initial_cluster.clone();
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("etcd log file");
        // On restart the data dir already holds the membership; the --initial-* flags
        // are then ignored by etcd, so the same command line serves both cases.
        let child = Command::new(binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url()])
            .args(["--advertise-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "k8rs-test"])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        m.child = Some(child);
    }

    /// Client URLs of all members, running or not.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].client_url()
    }

    /// Kills member `i` and waits for it to exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its old data and ports and waits until it is healthy.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        self.spawn(&etcd_binary(), i);
        self.wait_healthy(i);
    }

    /// Polls the member's `/health` (true once it has a leader) until the deadline.
    pub fn wait_healthy(&mut self, i: usize) {
        let deadline = Instant::now() + HEALTH_DEADLINE;
        loop {
            if health(self.members[i].client_port) {
                return;
            }
            let exited = self.members[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "etcd member {} exited ({status}) while starting:\n{}",
                    self.members[i].name,
                    self.log_tail(i)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "etcd member {} was not healthy within {HEALTH_DEADLINE:?}:\n{}",
                    self.members[i].name,
                    self.log_tail(i)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(&self.members[i].log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}

/// One `GET /health` over plain HTTP/1.0; etcd answers `{"health":"true"}` once the
/// member has a leader.
fn health(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = conn.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}
