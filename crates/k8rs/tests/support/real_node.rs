//! A real node for tests: `k8rs server` with its agent on a pod network and bridge of
//! the test's own, and everything the agent started removed when dropped.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::at_address::killall;
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
    /// Starts the server and waits until its node is Ready and pods can be created.
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
        // Pods are refused until the namespace's service account exists.
        wait_for("default service account", Duration::from_secs(30), || {
            let sa = node.server().kubectl(&["get", "serviceaccount", "default"]);
            sa.status.success().then_some(())
        });
        node
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        self.server().jsonpath(args, path)
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

impl Drop for RealNode {
    fn drop(&mut self) {
        // The data dir goes with the Server: clean up before dropping it.
        let Some(mut server) = self.server.take() else {
            return;
        };
        server.kill();
        killall(&self.data, self.opts.bridge, None);
        drop(server);
    }
}
