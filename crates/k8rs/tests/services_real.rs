//! Services reachable for real: `k8rs server` with its agent runs busybox web servers,
//! the real kubectl exposes them as a LoadBalancer, and plain TCP connections from the
//! host reach them through the ClusterIP, the NodePort on the node's address and the
//! ServiceLB ingress IP (the node's address), all DNATed by the agent's nftables
//! proxy. Needs root and scripts/deps.sh's packages; fails (never skips) without
//! them. Its own pod/service networks, bridge and nftables table let it run beside the
//! other real-container tests.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::node_at::NodeAt;

const BRIDGE: &str = "k8rs-sv0";
const NODE: &str = "k8rs-svc-test";
const TABLE: &str = "k8rs-proxy-svtest";

fn start_node() -> NodeAt {
    let args = [
        "--cluster-cidr=10.192.0.0/16",
        "--service-cidr=10.193.0.0/16",
        "--cluster-dns=10.193.0.10",
        &format!("--cni-bridge={BRIDGE}"),
        &format!("--kube-proxy-table={TABLE}"),
    ];
    NodeAt::start(NODE, BRIDGE, Some(TABLE), "pods,svc,endpointslices", &args)
}

/// `GET /` over a fresh TCP connection; the body.
fn get(addr: SocketAddr) -> std::io::Result<String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(3)))?;
    c.write_all(format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    c.read_to_string(&mut response)?;
    match response.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.to_string())
        }
        _ => Err(std::io::Error::other(format!("bad response: {response:?}"))),
    }
}

/// The pod that answered: the index page is `<hostname> <pod name>`.
fn answering_pod(addr: SocketAddr) -> Option<String> {
    let body = get(addr).ok()?;
    let pod = body.split_whitespace().nth(1)?;
    pod.starts_with("web-").then(|| pod.to_string())
}

/// The pods answering at `addr` over up to `tries` connections, stopping once `want`
/// were all seen.
fn pods_answering(addr: SocketAddr, want: &BTreeSet<String>, tries: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..tries {
        if let Some(p) = answering_pod(addr) {
            seen.insert(p);
        }
        if want.is_subset(&seen) {
            break;
        }
    }
    seen
}

fn ready_pods(node: &NodeAt) -> BTreeSet<String> {
    let out = node.jsonpath(
        &["get", "pods", "-l", "app=web"],
        r#"{range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    );
    out.lines()
        .filter_map(|l| l.strip_suffix(" True"))
        .map(str::to_string)
        .collect()
}

const DEPLOYMENT: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
      "spec": {"terminationGracePeriodSeconds": 1,
        "containers": [{"name": "httpd", "image": "docker.io/library/busybox:latest",
          "command": ["sh", "-c", "mkdir -p /www && echo \"$(hostname) $POD_NAME\" > /www/index.html && exec httpd -f -p 80 -h /www"],
          "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
          "ports": [{"containerPort": 80}]}]}}}}"#;

#[test]
fn services_reach_pods_through_the_node_proxy() {
    let started = Instant::now();
    let node = start_node();
    let s = node.server();

    s.apply(DEPLOYMENT);
    let pods = node.wait("2 web pods Ready", Duration::from_secs(60), || {
        let p = ready_pods(&node);
        (p.len() == 2).then_some(p)
    });
    s.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--type=LoadBalancer",
    ]);

    // ServiceLB: the node's address is the ingress; kubectl shows it with the node port.
    let node_ip = node.ip.to_string();
    node.wait("load balancer ingress", Duration::from_secs(30), || {
        (node.jsonpath(
            &["get", "svc", "web"],
            "{.status.loadBalancer.ingress[*].ip}",
        ) == node_ip)
            .then_some(())
    });
    let cluster_ip: IpAddr = node
        .jsonpath(&["get", "svc", "web"], "{.spec.clusterIP}")
        .parse()
        .unwrap();
    let node_port: u16 = node
        .jsonpath(&["get", "svc", "web"], "{.spec.ports[0].nodePort}")
        .parse()
        .unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    let table = s.kubectl_ok(&["get", "svc", "web"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("a row")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        &[
            "web",
            "LoadBalancer",
            &cluster_ip.to_string(),
            &node_ip,
            &format!("80:{node_port}/TCP")
        ],
        "{table}"
    );

    // Every way in reaches the pods, and connections spread over both.
    let ways = [
        ("ClusterIP", SocketAddr::new(cluster_ip, 80)),
        ("NodePort", SocketAddr::new(node.ip, node_port)),
        ("LoadBalancer IP", SocketAddr::new(node.ip, 80)),
    ];
    for (what, addr) in ways {
        node.wait(
            &format!("{what} {addr} answers"),
            Duration::from_secs(20),
            || answering_pod(addr),
        );
        let seen = pods_answering(addr, &pods, 100);
        assert_eq!(seen, pods, "pods answering at {what} {addr}");
    }

    // Scaling up: the new pod is reached once it is Ready.
    s.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    let scaled = Instant::now();
    let all = node.wait("3 web pods Ready", Duration::from_secs(60), || {
        let p = ready_pods(&node);
        (p.len() == 3).then_some(p)
    });
    let pod_ready = scaled.elapsed();
    let new_pod: BTreeSet<String> = all.difference(&pods).cloned().collect();
    assert_eq!(new_pod.len(), 1, "{all:?} vs {pods:?}");
    node.wait(
        "the new pod answers at the ClusterIP",
        Duration::from_secs(20),
        || {
            answering_pod(ways[0].1)
                .filter(|p| new_pod.contains(p))
                .map(|_| ())
        },
    );
    eprintln!(
        "scale to 3 → new pod Ready: {pod_ready:?}; → answering at the ClusterIP: {:?}",
        scaled.elapsed()
    );
    let seen = pods_answering(ways[1].1, &all, 200);
    assert_eq!(seen, all, "pods answering at the NodePort after scaling");

    // A service without endpoints refuses connections at once instead of hanging.
    s.kubectl_ok(&["create", "service", "clusterip", "empty", "--tcp=80:80"]);
    let empty_ip: IpAddr = node
        .jsonpath(&["get", "svc", "empty"], "{.spec.clusterIP}")
        .parse()
        .unwrap();
    let refused_in = node.wait("empty service refused", Duration::from_secs(20), || {
        let t = Instant::now();
        match TcpStream::connect_timeout(&SocketAddr::new(empty_ip, 80), Duration::from_secs(2)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(t.elapsed()),
            _ => None,
        }
    });
    assert!(
        refused_in < Duration::from_secs(1),
        "refused after {refused_in:?}"
    );
    eprintln!("connection to a service without endpoints refused in {refused_in:?}");

    // No longer a LoadBalancer: ServiceLB takes its address back.
    s.kubectl_ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec": {"type": "NodePort"}}"#,
    ]);
    node.wait(
        "load balancer ingress cleared",
        Duration::from_secs(20),
        || {
            node.jsonpath(&["get", "svc", "web"], "{.status.loadBalancer}")
                .trim()
                .trim_matches(['{', '}'])
                .is_empty()
                .then_some(())
        },
    );
    let table = s.kubectl_ok(&["get", "svc", "web"]);
    assert!(table.contains(" <none> "), "{table}");
    node.wait("NodePort still answers", Duration::from_secs(20), || {
        answering_pod(ways[1].1)
    });

    // Deleting the service removes its rules: the ClusterIP no longer answers.
    s.kubectl_ok(&["delete", "svc", "web"]);
    let deleted = Instant::now();
    let ip = cluster_ip.to_string();
    node.wait(
        "ClusterIP gone from the table",
        Duration::from_secs(20),
        || {
            let t = node.nft_table();
            (t.contains("service-ips") && !t.contains(&ip)).then_some(())
        },
    );
    eprintln!("service deleted → rules gone: {:?}", deleted.elapsed());
    assert!(get(ways[0].1).is_err(), "{cluster_ip}:80 still answers");
    assert!(
        get(ways[1].1).is_err(),
        "node port {node_port} still answers"
    );
    // Every change went in as one incremental transaction: none was refused (a
    // refused one is retried from scratch, which would hide the bug).
    let log = s.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("applying proxy rules failed"))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    eprintln!("whole test: {:?}", started.elapsed());
}
