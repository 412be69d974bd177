//! Starts a real `k8rs server` on a free loopback port with its own data dir, and
//! drives it with the installed `kubectl` and the Python `kubernetes` client.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod agent;
pub mod at_address;
pub mod colleague;
pub mod node_at;

/// A running server; killed when dropped. Its stdin is a pipe it exits on closing, so
/// a test process that dies takes the server with it.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    /// How to start it again on the same data dir.
    relaunch: Launch,
}

/// How a server was started: its flags, whether with its agent, its node address.
#[derive(Clone)]
struct Launch {
    opts: Opts,
    agent: bool,
    advertise: IpAddr,
}

/// Extra flags for a server. Servers get `--disable-ingress` (tests start many
/// servers at once, which would fight over ports 80 and 443) unless `args` choose the
/// Ingress controller's ports with `--ingress-http-port`.
#[derive(Default, Clone)]
pub struct Opts {
    pub args: Vec<String>,
}

/// `--disable-ingress` unless `args` set the Ingress controller's HTTP port.
pub fn ingress_flag(args: &[String]) -> Option<&'static str> {
    let wanted = args.iter().any(|a| a.starts_with("--ingress-http-port"));
    (!wanted).then_some("--disable-ingress")
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> Server {
        Self::spawn(opts, false)
    }

    /// A server with its node agent (real containers) instead of `--disable-agent`.
    pub fn start_with_agent(opts: Opts) -> Server {
        Self::spawn(opts, true)
    }

    fn spawn(opts: Opts, agent: bool) -> Server {
        Self::spawn_at(opts, agent, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Starts a server whose node address is `advertise` (the API server listens on
    /// loopback only) and waits until it is ready.
    fn spawn_at(opts: Opts, agent: bool, advertise: IpAddr) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let relaunch = Launch {
            opts,
            agent,
            advertise,
        };
        let child = launch(dir.path(), &relaunch);
        let server = Server {
            child,
            dir,
            kubeconfig,
            relaunch,
        };
        server.wait_ready(Duration::from_secs(60));
        server
    }

    /// Starts the server again with the same flags on the same data dir, killing it
    /// first if it still runs. The log is appended to.
    pub fn restart(&mut self) {
        self.kill();
        // The restarted server writes it again with its new port.
        let _ = std::fs::remove_file(&self.kubeconfig);
        self.child = launch(self.dir.path(), &self.relaunch);
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("server not ready within {within:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(kubectl_path());
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path().join("home"));
        c
    }

    /// `kubectl <args> -o jsonpath=<path>`'s output, whatever the exit code.
    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let out = self.kubectl(&[args, &["-o", &format!("jsonpath={path}")]].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl; returns its output whatever the exit code.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args).output().expect("run kubectl")
    }

    /// Runs kubectl, panicking with its stderr when it fails; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs kubectl with `stdin` as input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .kubectl_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// `kubectl apply -f -` (or another verb) of a manifest; panics on failure.
    pub fn apply(&self, manifest: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], manifest);
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a Python script with the `kubernetes` client configured for this server.
    pub fn python(&self, script: &str) -> Output {
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run python3")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
}

/// Simulated nodes started with `k8rs hollow-nodes`; stopped when dropped.
pub struct HollowNodes(Child);

impl HollowNodes {
    /// Stops the nodes (as if they had all failed).
    pub fn stop(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for HollowNodes {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Starts `count` hollow nodes against this server and waits until they are Ready.
    pub fn hollow_nodes(&self, count: usize, extra: &[&str]) -> HollowNodes {
        let log = std::fs::File::create(self.dir.path().join("hollow.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_k8rs"))
            .args([
                "hollow-nodes",
                "--count",
                &count.to_string(),
                "--kubeconfig",
                self.kubeconfig.to_str().unwrap(),
            ])
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start hollow nodes");
        let nodes = HollowNodes(child);
        wait_for("hollow nodes Ready", Duration::from_secs(60), || {
            let out = self.kubectl_ok(&["get", "nodes", "--no-headers"]);
            (out.lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
                .count()
                >= count)
                .then_some(())
        });
        nodes
    }
}

impl Server {
    /// Kills the server process with SIGKILL (no clean shutdown) but keeps its data dir.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `k8rs server` on the data dir under `dir`, logging to `dir/server.log`.
fn launch(dir: &Path, how: &Launch) -> Child {
    let (opts, agent) = (&how.opts, how.agent);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_k8rs"))
        .arg("server")
        .args(["--data-dir", dir.join("data").to_str().unwrap()])
        .args([
            "--https-listen-port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            &how.advertise.to_string(),
        ])
        .args([
            "--write-kubeconfig",
            dir.join("kubeconfig.yaml").to_str().unwrap(),
        ])
        .args((!agent).then_some("--disable-agent"))
        // Several servers with agents may run at once: each kubelet API on a free port.
        .args(
            agent
                .then_some(["--kubelet-port", "0"])
                .into_iter()
                .flatten(),
        )
        .arg("--exit-with-stdin")
        .args(ingress_flag(&opts.args))
        .args(&opts.args)
        .env("HOME", dir.join("home"))
        .env_remove("KUBECONFIG")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start k8rs server")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kubectl under test: `$KUBECTL`, else the installed `kubectl`.
pub fn kubectl_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| "kubectl".into())
    })
    .clone()
}

/// A kubectl of another minor version, from the Google Cloud SDK beside the default.
pub fn versioned_kubectl(minor: u32) -> Option<PathBuf> {
    let p = Path::new("/usr/lib/google-cloud-sdk/bin").join(format!("kubectl.1.{minor}"));
    p.exists().then_some(p)
}

/// Polls `check` until it returns `Some`, or panics after `within`.
pub fn wait_for<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of `GET path` from `addr` over HTTP/1.0 (trailing whitespace trimmed), or
/// `None` if it cannot be fetched.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    tcp.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n")
        .map(|(_, body)| body.trim_end().to_string())
}
