//! A real node at a real address of this machine: `k8rs server` with its agent,
//! bound to the primary IPv4 address so NodePorts, LoadBalancer IPs and Ingress ports
//! are reachable as users reach them. Dropping it leaves nothing behind: sandboxes,
//! containerd, the bridge and the proxy's nftables tables.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::at_address::{killall, primary_ipv4};
use super::{Opts, Server, wait_for};

pub struct NodeAt {
    server: Option<Server>,
    pub data: PathBuf,
    pub ip: IpAddr,
    bridge: String,
    /// The proxy's nftables table, if it runs.
    table: Option<String>,
    /// What a timed-out wait prints (`kubectl get <objects> -A -o wide`).
    objects: &'static str,
}

impl NodeAt {
    /// Starts the server as node `name` with `args` (which must name
    /// `--cni-bridge=<bridge>`, and `--kube-proxy-table=<table>` unless the proxy is
    /// disabled; `{ip}` in them becomes the node's address) and waits until the node
    /// is Ready.
    pub fn start(
        name: &str,
        bridge: &str,
        table: Option<&str>,
        objects: &'static str,
        args: &[&str],
    ) -> NodeAt {
        let started = Instant::now();
        let ip = IpAddr::V4(primary_ipv4().expect("this machine needs a non-loopback address"));
        let mut args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{ip}", &ip.to_string()))
            .collect();
        args.push(format!("--node-name={name}"));
        let server = Server::start_with_agent_at(ip, Opts { args });
        let data = server.data_dir();
        let node = NodeAt {
            server: Some(server),
            data,
            ip,
            bridge: bridge.to_string(),
            table: table.map(str::to_string),
            objects,
        };
        let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
        node.wait("node Ready", Duration::from_secs(60), || {
            (node.jsonpath(&["get", "node", name], ready) == "True").then_some(())
        });
        eprintln!("server start → node Ready: {:?}", started.elapsed());
        node
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        self.server().jsonpath(args, path)
    }

    /// The proxy's tables (the main one, then its shards) as `nft` lists them (empty
    /// without a proxy).
    pub fn nft_table(&self) -> String {
        use proxy::nft::Nftables;
        let Some(main) = &self.table else {
            return String::new();
        };
        let mut tables: Vec<String> = proxy::nft::NftCommand
            .tables()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| proxy::tables::is_ours(main, t))
            .collect();
        tables.sort_by_key(|t| t != main);
        tables
            .iter()
            .filter_map(|t| {
                let out = Command::new("nft")
                    .args(["list", "table", "ip", t])
                    .output();
                out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .ok()
            })
            .collect()
    }

    /// Waits for `check`; on timeout panics with the objects, the proxy's rules and
    /// the server's log tail.
    pub fn wait<T>(&self, what: &str, within: Duration, check: impl FnMut() -> Option<T>) -> T {
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, within, check)
        }));
        found.unwrap_or_else(|_| {
            let objects = self.server().kubectl(&[
                "get",
                &format!("nodes,{}", self.objects),
                "-A",
                "-o",
                "wide",
            ]);
            let log = self.server().log();
            let lines: Vec<&str> = log.lines().collect();
            panic!(
                "timed out after {within:?} waiting for {what}\n{}\nnft:\n{}\nserver log tail:\n{}",
                String::from_utf8_lossy(&objects.stdout),
                self.nft_table(),
                lines[lines.len().saturating_sub(40)..].join("\n")
            )
        })
    }
}

impl Drop for NodeAt {
    fn drop(&mut self) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        server.kill();
        killall(&self.data, &self.bridge, self.table.as_deref());
        drop(server);
    }
}
