//! `k8rs agent` processes joining a server with its token. An agent can be killed
//! (any signal) and started again on the same data dir, as a node's service would be;
//! dropping it removes everything its containerd left and its bridge.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::Server;

pub struct Agent {
    child: Option<Child>,
    pub data: PathBuf,
    pub node: String,
    bridge: String,
    args: Vec<String>,
    log: PathBuf,
}

/// The API server URL written into the server's kubeconfig.
pub fn server_url(server: &Server) -> String {
    let kubeconfig = std::fs::read_to_string(&server.kubeconfig).unwrap();
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .map(|s| s.trim_matches('"').to_string())
        .expect("server URL in kubeconfig")
}

impl Agent {
    /// Starts an agent of `server` named `node` (node IP 127.0.0.1) on the pod bridge
    /// `bridge`, without the service proxy and ingress; `extra` are more flags.
    pub fn start(server: &Server, data: &Path, node: &str, bridge: &str, extra: &[&str]) -> Agent {
        let token = std::fs::read_to_string(server.data_dir().join("server/token")).unwrap();
        let mut args: Vec<String> = vec!["agent".into(), "--server".into(), server_url(server)];
        args.extend(["--token".into(), token.trim().to_string()]);
        args.extend(["--data-dir".into(), data.display().to_string()]);
        args.extend([
            "--node-name".into(),
            node.into(),
            "--node-ip".into(),
            "127.0.0.1".into(),
        ]);
        args.extend([
            "--cni-bridge".into(),
            bridge.into(),
            "--kubelet-port".into(),
            "0".into(),
        ]);
        args.extend(["--disable-kube-proxy".into(), "--disable-ingress".into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        std::fs::create_dir_all(data).unwrap();
        let mut agent = Agent {
            child: None,
            data: data.to_path_buf(),
            node: node.into(),
            bridge: bridge.into(),
            args,
            log: data.join("agent.log"),
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        // Appended, so a restarted agent's log follows the earlier one's.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_k8rs"))
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start k8rs agent");
        self.child = Some(child);
    }

    /// Sends `signal` (e.g. "KILL", "TERM") and waits for the agent to exit.
    pub fn stop(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    /// Starts the agent again with the same flags and data dir.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the agent first");
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop("KILL");
        super::at_address::killall(&self.data, &self.bridge, None);
    }
}
