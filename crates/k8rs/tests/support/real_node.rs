//! A real node for tests: `k8rs server` with its agent on a pod network and bridge of
//! the test's own, and everything the agent started removed when dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cri::RuntimeService;
use cri::containerd::{Config, Containerd, force_cleanup};

use crate::support::{Opts, Server, wait_for};

/// The networks and names of one test's node.
pub struct NodeOpts {
    pub cluster_cidr: &'static str,
    pub service_cidr: &'static str,
    pub cluster_dns: &'static str,
    pub bridge: &'static str,
    pub node_name: &'static str,
}

/// The server and everything its agent started; dropping it leaves nothing behind:
/// sandboxes (their CNI teardown), containerd, shims, mounts and the bridge.
pub struct RealNode {
    server: Option<Server>,
    pub data: PathBuf,
    pub opts: NodeOpts,
}

impl RealNode {
    /// Starts the server and waits until its node is Ready.
    pub fn start(opts: NodeOpts) -> RealNode {
        let server = Server::start_with_agent(Opts {
            args: vec![
                format!("--cluster-cidr={}", opts.cluster_cidr),
                format!("--service-cidr={}", opts.service_cidr),
                format!("--cluster-dns={}", opts.cluster_dns),
                format!("--cni-bridge={}", opts.bridge),
                format!("--node-name={}", opts.node_name),
                // No services here; a proxy would leave its nftables table behind.
                "--disable-kube-proxy".into(),
            ],
        });
        let data = server.data_dir();
        let node = RealNode {
            server: Some(server),
            data,
            opts,
        };
        let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
        wait_for("node Ready", Duration::from_secs(60), || {
            (node.jsonpath(&["get", "node", node.opts.node_name], ready) == "True").then_some(())
        });
        node
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn containerd(&self) -> Config {
        let agent = self.data.join("agent");
        Config::new(agent.join("containerd"), agent.join("etc/cni/net.d"))
    }

    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let out = self
            .server()
            .kubectl(&[args, &["-o", &format!("jsonpath={path}")]].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The log file of the first run of `container` in `pod`.
    pub fn log_path(&self, ns: &str, pod: &str, container: &str) -> PathBuf {
        let uid = self.jsonpath(&["get", "pod", "-n", ns, pod], "{.metadata.uid}");
        self.data
            .join(format!("agent/pods/{ns}_{pod}_{uid}/{container}/0.log"))
    }

    /// Waits until `check` says yes; on timeout, panics with the pod and the log tail.
    pub fn wait_pod_until<T>(
        &self,
        pod: &str,
        what: &str,
        within: Duration,
        check: impl FnMut() -> Option<T>,
    ) -> T {
        let what = format!("pod {pod}: {what}");
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&what, within, check)
        }));
        match found {
            Ok(v) => v,
            Err(_) => {
                let yaml = self.server().kubectl(&["get", "pod", pod, "-o", "yaml"]);
                panic!(
                    "timed out after {within:?} waiting for {what}\n{}\nserver log tail:\n{}",
                    String::from_utf8_lossy(&yaml.stdout),
                    tail(&self.server().log(), 40)
                );
            }
        }
    }

    pub fn wait_pod(&self, pod: &str, path: &str, want: &str, within: Duration) {
        self.wait_pod_until(pod, &format!("{path} = {want}"), within, || {
            (self.jsonpath(&["get", "pod", pod], path) == want).then_some(())
        });
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The pid of the containerd running with `config`'s config file (orphaned once the
/// server was killed).
pub fn containerd_pid(config: &Config) -> Option<u32> {
    let want = format!("--config\0{}\0", config.config_path().display());
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(p.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains(&want).then_some(pid)
    })
}

impl Drop for RealNode {
    fn drop(&mut self) {
        // The data dir goes with the Server: clean up before dropping it.
        let Some(mut server) = self.server.take() else {
            return;
        };
        server.kill();
        let config = self.containerd();
        if config.state_dir.exists() {
            cleanup(&config);
        }
        let _ = Command::new("ip")
            .args(["link", "del", self.opts.bridge])
            .output();
        drop(server);
    }
}

/// Removes every sandbox through CRI (so their CNI teardown runs and no masquerade
/// rules stay behind), stops containerd, then force-cleans what is left.
pub fn cleanup(config: &Config) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let restarted = match containerd_pid(config) {
            Some(_) => None,
            None => match Containerd::start(config.clone()).await {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("cannot restart containerd for cleanup: {e}");
                    return;
                }
            },
        };
        if let Ok(client) = cri::CriClient::connect(config.socket()).await {
            for pod in client.list_pod_sandbox(None).await.unwrap_or_default() {
                let _ = client.stop_pod_sandbox(&pod.id).await;
                let _ = client.remove_pod_sandbox(&pod.id).await;
            }
        }
        if let Some(c) = restarted {
            let _ = c.stop(Duration::from_secs(5)).await;
        }
    });
    if let Some(pid) = containerd_pid(config) {
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while containerd_pid(config).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if containerd_pid(config).is_some() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    match force_cleanup(config) {
        Ok(c) if c == Default::default() => {}
        Ok(c) => eprintln!("forced cleanup: {c:?}"),
        Err(e) => eprintln!("forced cleanup failed: {e}"),
    }
}
