//! Cluster DNS for real: a busybox pod of `k8rs server`'s agent resolves the
//! `kubernetes` service through its resolv.conf (the kubelet's `--cluster-dns`), whose
//! queries the nftables proxy DNATs from the kube-dns ClusterIP to the server's
//! built-in DNS. The node has a real address of this machine, as pods cannot reach a
//! server on loopback. Needs root and scripts/deps.sh's packages; fails (never skips)
//! without them. Its own networks, bridge and nftables table let it run beside the
//! other real-container tests.

mod support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use support::node_at::NodeAt;

const BRIDGE: &str = "k8rs-dn0";
const NODE: &str = "k8rs-dns-test";
const TABLE: &str = "k8rs-proxy-dntest";

fn start_node() -> NodeAt {
    let args = [
        "--cluster-cidr=10.202.0.0/16",
        "--service-cidr=10.203.0.0/16",
        "--cluster-dns=10.203.0.10",
        "--dns-listen={ip}:0",
        &format!("--cni-bridge={BRIDGE}"),
        &format!("--kube-proxy-table={TABLE}"),
    ];
    NodeAt::start(NODE, BRIDGE, Some(TABLE), "pods,svc,endpointslices", &args)
}

/// A DNS question for `name`'s A records, by hand (RFC 1035 4.1).
fn a_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}

/// Both tests use the same networks, bridge and table.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[test]
fn pods_resolve_services_through_the_cluster_dns() {
    let _serial = SERIAL.blocking_lock();
    let node = start_node();
    let s = node.server();

    // The kube-dns Service, as upstream's, so kubectl cluster-info lists it.
    node.wait("kube-dns endpoints", Duration::from_secs(30), || {
        let ep = node.jsonpath(
            &[
                "get",
                "endpointslices",
                "-n",
                "kube-system",
                "-l",
                "kubernetes.io/service-name=kube-dns",
            ],
            "{.items[*].endpoints[*].addresses[*]}",
        );
        (!ep.is_empty()).then_some(())
    });
    assert_eq!(
        node.jsonpath(
            &["get", "svc", "-n", "kube-system", "kube-dns"],
            "{.spec.clusterIP}"
        ),
        "10.203.0.10"
    );
    let info = s.kubectl_ok(&["cluster-info"]);
    assert!(info.contains("CoreDNS is running at"), "{info}");

    // From the host, through the ClusterIP (the proxy's output chain).
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    node.wait(
        "host query to 10.203.0.10:53",
        Duration::from_secs(30),
        || {
            sock.send_to(
                &a_query(7, "kubernetes.default.svc.cluster.local"),
                "10.203.0.10:53",
            )
            .ok()?;
            let mut buf = [0u8; 512];
            let n = sock.recv(&mut buf).ok()?;
            buf[..n]
                .windows(4)
                .any(|w| w == [10, 203, 0, 1])
                .then_some(())
        },
    );

    // CoreDNS's metrics, through the Service's `metrics` port, count that query.
    let metrics = node.wait(
        "DNS metrics via 10.203.0.10:9153",
        Duration::from_secs(30),
        || {
            support::http_get("10.203.0.10:9153".parse().unwrap(), "/metrics")
                .filter(|m| m.contains("coredns_dns_requests_total{"))
        },
    );
    assert!(
        metrics.contains(r#"rcode="NOERROR",plugin="kubernetes"}"#),
        "{metrics}"
    );

    // From a pod, through its resolv.conf.
    let asked = Instant::now();
    s.kubectl_ok(&[
        "run",
        "lookup",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup kubernetes.default.svc.cluster.local",
    ]);
    node.wait("lookup pod finished", Duration::from_secs(60), || {
        let phase = node.jsonpath(&["get", "pod", "lookup"], "{.status.phase}");
        (phase == "Succeeded" || phase == "Failed").then_some(())
    });
    eprintln!("pod created → finished: {:?}", asked.elapsed());
    let logs = s.kubectl_ok(&["logs", "lookup"]);
    assert!(logs.contains("nameserver 10.203.0.10"), "{logs}");
    assert!(
        logs.contains("Address: 10.203.0.1") || logs.contains("Address 1: 10.203.0.1"),
        "{logs}"
    );
}

/// The seed walkthrough with the built-in nginx image: a Deployment exposed as a
/// LoadBalancer answers on its ClusterIP, NodePort and external IP, and a pod reaches
/// it by DNS name.
#[test]
fn nginx_walkthrough_by_address_and_by_name() {
    let _serial = SERIAL.blocking_lock();
    let node = start_node();
    let s = node.server();
    s.kubectl_ok(&[
        "create",
        "deployment",
        "my-first-nginx",
        "--image=nginx",
        "--replicas=2",
        "--port=80",
    ]);
    s.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/my-first-nginx",
        "--timeout=120s",
    ]);
    s.kubectl_ok(&[
        "expose",
        "deployment",
        "my-first-nginx",
        "--port=80",
        "--type=LoadBalancer",
    ]);
    let external = node.wait("an external IP", Duration::from_secs(30), || {
        let ip = node.jsonpath(
            &["get", "svc", "my-first-nginx"],
            "{.status.loadBalancer.ingress[0].ip}",
        );
        ip.parse::<IpAddr>().ok()
    });
    assert_eq!(external, node.ip);
    let svc = s.kubectl_ok(&["get", "svc", "my-first-nginx"]);
    let row = svc.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        row.contains(&external.to_string()) && row.contains("80:3"),
        "{svc}"
    );
    let cluster_ip: IpAddr = node
        .jsonpath(&["get", "svc", "my-first-nginx"], "{.spec.clusterIP}")
        .parse()
        .unwrap();
    let node_port: u16 = node
        .jsonpath(
            &["get", "svc", "my-first-nginx"],
            "{.spec.ports[0].nodePort}",
        )
        .parse()
        .unwrap();
    for addr in [
        SocketAddr::new(cluster_ip, 80),
        SocketAddr::new(node.ip, node_port),
        SocketAddr::new(external, 80),
    ] {
        let body = node.wait(&format!("nginx at {addr}"), Duration::from_secs(30), || {
            support::http_get(addr, "/").filter(|b| b.contains("Welcome to nginx!"))
        });
        assert!(body.contains("<title>Welcome to nginx!</title>"), "{body}");
    }

    // The service by name from inside a pod.
    let script = "wget -qO- http://my-first-nginx.default.svc.cluster.local/ | grep -m1 -o 'Welcome to nginx!'";
    s.kubectl_ok(&[
        "run",
        "client",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        script,
    ]);
    node.wait("client pod finished", Duration::from_secs(90), || {
        let phase = node.jsonpath(&["get", "pod", "client"], "{.status.phase}");
        (phase == "Succeeded" || phase == "Failed").then_some(())
    });
    let logs = s.kubectl_ok(&["logs", "client"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines, ["Welcome to nginx!"], "{logs}");
}
