//! The proxy against the real kernel: an endpoint (busybox httpd) in a network
//! namespace, Services and EndpointSlices created through the real API server, and
//! curl from the host through the ClusterIP and a NodePort, and from the endpoint to
//! itself through the ClusterIP (hairpin). Needs root, as CI has.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use proxy::tables::Tables;
use serde_json::json;
use testkit::TestServer;

const NS: &str = "k8rs-pxt";
/// Our own table, so a k8rs server on this machine keeps its rules.
const TABLE: &str = "k8rs-proxy-test";
const HOST_IP: &str = "10.199.77.1";
const POD_IP: &str = "10.199.77.2";

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace with a web server, removed on drop.
struct Endpoint {
    httpd: Child,
    _root: tempfile::TempDir,
}

impl Endpoint {
    fn start() -> Self {
        sh(&format!("ip netns del {NS}"));
        assert!(
            sh(&format!(
                "ip netns add {NS} && ip link add k8rspxh type veth peer name k8rspxn && ip link set k8rspxn netns {NS} \
             && ip addr add {HOST_IP}/24 dev k8rspxh && ip link set k8rspxh up \
             && ip netns exec {NS} ip addr add {POD_IP}/24 dev k8rspxn && ip netns exec {NS} ip link set k8rspxn up \
             && ip netns exec {NS} ip link set lo up && ip netns exec {NS} ip route add default via {HOST_IP}"
            )),
            "network namespace set-up failed"
        );
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("index.html"), "hello from endpoint\n").unwrap();
        let httpd = Command::new("ip")
            .args([
                "netns", "exec", NS, "busybox", "httpd", "-f", "-p", "8080", "-h",
            ])
            .arg(root.path())
            .spawn()
            .expect("busybox httpd");
        Self { httpd, _root: root }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.httpd.kill();
        let _ = self.httpd.wait();
        sh(&format!("ip link del k8rspxh; ip netns del {NS}"));
        let _ = proxy::nft::cleanup(&proxy::nft::NftCommand, TABLE);
    }
}

/// The real kernel path (`nft -f` for whole tables, netlink for changes),
/// remembering refused transactions: a refused incremental one is retried from
/// scratch, which would hide a bad diff.
#[derive(Default)]
struct Recording(parking_lot::Mutex<Vec<String>>);

impl proxy::nft::Nftables for Recording {
    fn apply(&self, script: &str) -> Result<(), proxy::nft::NftError> {
        let result = proxy::nft::NftCommand.apply(script);
        if let Err(e) = &result {
            self.0.lock().push(format!("{e}\n{script}"));
        }
        result
    }

    fn apply_ops(&self, steps: &[proxy::nft::Step<'_>]) -> Result<(), proxy::nft::NftError> {
        let result = proxy::nft::NftCommand.apply_ops(steps);
        if let Err(e) = &result {
            self.0
                .lock()
                .push(format!("{e}\n{}", proxy::nft::script(steps)));
        }
        result
    }

    fn tables(&self) -> Result<Vec<String>, proxy::nft::NftError> {
        proxy::nft::NftCommand.tables()
    }
}

fn curl(url: &str) -> Result<String, String> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "3", url])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_reach_endpoints_through_nftables() {
    let _ep = tokio::task::spawn_blocking(Endpoint::start).await.unwrap();
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let opts = proxy::Options {
        table: TABLE.into(),
        node_name: "node-a".into(),
        // The endpoint's network is the pod network, so only the hairpin rule
        // masquerades its connections to itself.
        cluster_cidr: "10.199.0.0/16".parse().unwrap(),
        min_sync_interval: Duration::from_millis(10),
        shards: proxy::DEFAULT_SHARDS,
    };
    let nft = Arc::new(Recording::default());
    let proxy = tokio::spawn(proxy::run(client.clone(), opts, nft.clone(), None));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    let svc = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(svc).unwrap(),
        )
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    let (cluster_ip, node_port) = (
        spec.cluster_ip.unwrap(),
        spec.ports.unwrap()[0].node_port.unwrap(),
    );
    let slice = json!({"metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [POD_IP], "conditions": {"ready": true}, "nodeName": "node-a"}]});
    slices
        .create(
            &PostParams::default(),
            &serde_json::from_value(slice).unwrap(),
        )
        .await
        .unwrap();

    let via_cluster_ip = format!("http://{cluster_ip}/");
    // Until the rules are in, this machine's own network may answer instead: wait for
    // the endpoint's page.
    let body = tokio::task::spawn_blocking(move || {
        wait_until("ClusterIP answers", || {
            curl(&via_cluster_ip)
                .ok()
                .filter(|b| b.contains("endpoint"))
        })
    })
    .await
    .unwrap();
    assert_eq!(body, "hello from endpoint\n");
    let via_node_port = format!("http://{HOST_IP}:{node_port}/");
    let body = tokio::task::spawn_blocking(move || {
        wait_until("NodePort answers", || {
            curl(&via_node_port).ok().filter(|b| b.contains("endpoint"))
        })
    })
    .await
    .unwrap();
    assert_eq!(body, "hello from endpoint\n");

    // Hairpin: the endpoint reaches itself through the ClusterIP. Unmasqueraded, the
    // connection would arrive from its own address and the answer never reach curl.
    let via_cluster_ip = format!("http://{cluster_ip}/");
    let body = tokio::task::spawn_blocking(move || {
        wait_until("the endpoint reaches itself", || {
            let out = Command::new("ip")
                .args(["netns", "exec", NS, "curl", "-sS", "--max-time", "3"])
                .arg(&via_cluster_ip)
                .output()
                .ok()?;
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
                .filter(|b| b.contains("endpoint"))
        })
    })
    .await
    .unwrap();
    assert_eq!(body, "hello from endpoint\n");

    // No endpoints: refused at once rather than hanging.
    let empty = json!({"metadata": {"name": "empty"}, "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}});
    let empty = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(empty).unwrap(),
        )
        .await
        .unwrap();
    let empty_url = format!("http://{}/", empty.spec.unwrap().cluster_ip.unwrap());
    let err = tokio::task::spawn_blocking(move || {
        wait_until("reject", || {
            let t = Instant::now();
            match curl(&empty_url) {
                // An ICMP reject: curl fails at once ("Couldn't connect" / "refused").
                Err(e)
                    if t.elapsed() < Duration::from_secs(2)
                        && (e.contains("refused") || e.contains("Couldn't connect")) =>
                {
                    Some(e)
                }
                _ => None,
            }
        })
    })
    .await
    .unwrap();
    assert!(err.starts_with("curl: (7)"), "{err}");

    // Deleting the service removes its rules.
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let ip = cluster_ip.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("rules removed", || {
            let tables = Tables::new(TABLE, proxy::DEFAULT_SHARDS);
            let maps: String = tables.names()[1..]
                .iter()
                .map(|t| {
                    let out = Command::new("nft")
                        .args(["list", "map", "ip", t, "service-ips"])
                        .output()
                        .expect("nft");
                    assert!(out.status.success(), "{out:?}");
                    String::from_utf8_lossy(&out.stdout).into_owned()
                })
                .collect();
            (!maps.contains(&ip)).then_some(())
        })
    })
    .await
    .unwrap();
    proxy.abort();
    let refused = nft.0.lock().clone();
    assert!(refused.is_empty(), "{}", refused.join("\n---\n"));
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}
