//! A real node: `k8rs server` with its agent (containerd, runc, CNI bridge) running
//! busybox pods. Needs root and scripts/deps.sh's packages; fails (never skips)
//! without them. Uses its own pod/service networks and bridge so it can run beside
//! the cri crate's tests; tests here serialise themselves.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use cri::RuntimeService;
use cri::containerd::Config;
use support::at_address::killall;
use support::{Opts, Server, wait_for};

const BRIDGE: &str = "k8rs-nt0";
const NODE: &str = "k8rs-node-test";
/// Tests here share the bridge and the pod network.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server and everything its agent started; dropping it leaves nothing behind:
/// sandboxes (their CNI teardown), containerd, shims, mounts and the bridge.
struct Node {
    server: Option<Server>,
    data: PathBuf,
}

impl Node {
    fn start() -> Node {
        let server = Server::start_with_agent(Opts {
            args: [
                "--cluster-cidr=10.188.0.0/16",
                "--service-cidr=10.189.0.0/16",
                "--cluster-dns=10.189.0.10",
                &format!("--cni-bridge={BRIDGE}"),
                &format!("--node-name={NODE}"),
                // No services here; a proxy would leave its nftables table behind.
                "--disable-kube-proxy",
            ]
            .map(String::from)
            .to_vec(),
        });
        let data = server.data_dir();
        Node {
            server: Some(server),
            data,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    fn containerd(&self) -> Config {
        let agent = self.data.join("agent");
        Config::new(agent.join("containerd"), agent.join("etc/cni/net.d"))
    }

    /// Runs a CRI call on a runtime of its own (a tonic client must not cross runtimes).
    fn cri<T>(&self, f: impl AsyncFnOnce(cri::CriClient) -> T) -> Option<T> {
        let socket = self.containerd().socket();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = cri::CriClient::connect(socket).await.ok()?;
            Some(f(client).await)
        })
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let out = self
            .server()
            .kubectl(&[args, &["-o", &format!("jsonpath={path}")]].concat());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_pod(&self, pod: &str, path: &str, want: &str, within: Duration) {
        let what = format!("pod {pod} {path} = {want}");
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&what, within, || {
                last = self.jsonpath(&["get", "pod", pod], path);
                (last == want).then_some(())
            })
        }));
        if found.is_err() {
            let yaml = self.server().kubectl(&["get", "pod", pod, "-o", "yaml"]);
            panic!(
                "{what}: last {last:?}\n{}\nserver log tail:\n{}",
                String::from_utf8_lossy(&yaml.stdout),
                tail(&self.server().log(), 40)
            );
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Node {
    fn drop(&mut self) {
        // The data dir goes with the Server: clean up before dropping it.
        let Some(mut server) = self.server.take() else {
            return;
        };
        server.kill();
        killall(&self.data, BRIDGE, None);
        drop(server);
    }
}

#[test]
fn node_runs_real_pods() {
    let _serial = SERIAL.blocking_lock();
    let t = Instant::now();
    let node = Node::start();
    let s = node.server();
    let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
    wait_for("node Ready", Duration::from_secs(40), || {
        (node.jsonpath(&["get", "node", NODE], ready) == "True").then_some(())
    });
    eprintln!("server start → node Ready: {:?}", t.elapsed());

    let runtime = node.jsonpath(
        &["get", "node", NODE],
        "{.status.nodeInfo.containerRuntimeVersion}",
    );
    assert!(runtime.starts_with("containerd://"), "{runtime}");
    let kubelet = node.jsonpath(&["get", "node", NODE], "{.status.nodeInfo.kubeletVersion}");
    assert!(
        kubelet.starts_with("v1.33.") && kubelet.ends_with("-k8rs"),
        "{kubelet}"
    );
    let labels = node.jsonpath(&["get", "node", NODE], "{.metadata.labels}");
    assert!(
        labels.contains("node-role.kubernetes.io/control-plane"),
        "{labels}"
    );
    let cidr = node.jsonpath(&["get", "node", NODE], "{.spec.podCIDR}");
    assert!(cidr.starts_with("10.188."), "podCIDR {cidr}");
    s.kubectl_ok(&["get", "lease", "-n", "kube-node-lease", NODE]);

    // A pod that runs to completion, and its log file.
    s.kubectl_ok(&[
        "run",
        "hello",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "echo hello from k8rs",
    ]);
    node.wait_pod(
        "hello",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(20),
    );
    let reason = node.jsonpath(
        &["get", "pod", "hello"],
        "{.status.containerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(reason, "Completed");
    let uid = node.jsonpath(&["get", "pod", "hello"], "{.metadata.uid}");
    let log = node
        .data
        .join(format!("agent/pods/default_hello_{uid}/hello/0.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(text.contains("stdout F hello from k8rs"), "{text}");

    // Init containers run first, in order, each to completion.
    s.apply(
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "inits"},
            "spec": {"restartPolicy": "Never",
              "initContainers": [
                {"name": "one", "image": "busybox", "command": ["sh", "-c", "echo one"]},
                {"name": "two", "image": "busybox", "command": ["sh", "-c", "echo two"]}],
              "containers": [{"name": "main", "image": "busybox",
                "command": ["sh", "-c", "echo $(POD) on $(NODE)"],
                "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]}}"#,
    );
    node.wait_pod(
        "inits",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(20),
    );
    let reasons = node.jsonpath(
        &["get", "pod", "inits"],
        "{.status.initContainerStatuses[*].state.terminated.reason}",
    );
    assert_eq!(reasons, "Completed Completed");
    let uid = node.jsonpath(&["get", "pod", "inits"], "{.metadata.uid}");
    let log = node
        .data
        .join(format!("agent/pods/default_inits_{uid}/main/0.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains(&format!("inits on {NODE}")), "{text}");

    // A long-running pod with an address from the node's podCIDR.
    let created = Instant::now();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "sleeper",
        "--image=busybox",
        "--",
        "sleep",
        "3600",
    ]);
    let pod = wait_for("sleeper pod", Duration::from_secs(10), || {
        let name = node.jsonpath(
            &["get", "pods", "-l", "app=sleeper"],
            "{.items[0].metadata.name}",
        );
        (!name.is_empty()).then_some(name)
    });
    node.wait_pod(&pod, "{.status.phase}", "Running", Duration::from_secs(20));
    eprintln!("deployment created → pod Running: {:?}", created.elapsed());
    let ip = node.jsonpath(&["get", "pod", &pod], "{.status.podIP}");
    let net: ipnet::IpNet = cidr.parse().unwrap();
    assert!(
        net.contains(&ip.parse::<std::net::IpAddr>().unwrap()),
        "pod IP {ip} not in {cidr}"
    );
    let ping = Command::new("busybox")
        .args(["ping", "-c1", "-W2", &ip])
        .output();
    eprintln!("ping {ip} from the host: {:?}", ping.map(|o| o.status));

    // Deleting it stops its container and removes its sandbox before it leaves the API.
    let pod_uid = node.jsonpath(&["get", "pod", &pod], "{.metadata.uid}");
    let t = Instant::now();
    s.kubectl_ok(&["delete", "pod", &pod, "--grace-period=1"]);
    eprintln!(
        "pod deleted (grace 1 s, sleep ignores SIGTERM) in {:?}",
        t.elapsed()
    );
    let sandboxes = node
        .cri(async |c| c.list_pod_sandbox(None).await.unwrap())
        .expect("CRI socket");
    let uids: Vec<&str> = sandboxes
        .iter()
        .filter_map(|p| p.metadata.as_ref())
        .map(|m| m.uid.as_str())
        .collect();
    assert!(
        !uids.contains(&pod_uid.as_str()),
        "sandbox of {pod} left: {uids:?}"
    );

    // A crashing container restarts, then backs off; a missing image is reported.
    s.kubectl_ok(&[
        "run",
        "crasher",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    node.wait_pod(
        "crasher",
        "{.status.containerStatuses[0].state.waiting.reason}",
        "CrashLoopBackOff",
        Duration::from_secs(20),
    );
    let restarts = node.jsonpath(
        &["get", "pod", "crasher"],
        "{.status.containerStatuses[0].restartCount}",
    );
    assert!(
        restarts.parse::<u32>().unwrap() >= 1,
        "restartCount {restarts}"
    );
    let last = node.jsonpath(
        &["get", "pod", "crasher"],
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    );
    assert_eq!(last, "3");
    s.kubectl_ok(&[
        "run",
        "noimage",
        "--image=k8rs/nothing:1",
        "--image-pull-policy=Never",
    ]);
    node.wait_pod(
        "noimage",
        "{.status.containerStatuses[0].state.waiting.reason}",
        "ErrImageNeverPull",
        Duration::from_secs(20),
    );
    let message = node.jsonpath(
        &["get", "pod", "noimage"],
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert_eq!(
        message,
        "Container image \"k8rs/nothing:1\" is not present with pull policy of Never"
    );
    eprintln!("whole test: {:?}", t.elapsed());
}
