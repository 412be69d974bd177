//! Changes sent as netlink batches program exactly what the same changes as an
//! `nft -f` script program: two tables, one per path, listed by the real `nft` and
//! compared line by line, after a first load and after a change. Needs root.

use std::process::Command;

use proxy::model::{Endpoint, Proto, ServicePort};
use proxy::nft::{self, NftCommand, Nftables};
use proxy::rules::Ruleset;

const TEXT: &str = "k8rs-proxy-test-text";
const NETLINK: &str = "k8rs-proxy-test-netlink";

fn ep(ip: &str, ready: bool, local: bool) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port: 8080,
        ready,
        serving: ready,
        terminating: false,
        local,
    }
}

fn port(id: &str, ip: &str, proto: Proto, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        id: id.into(),
        cluster_ips: vec![ip.parse().unwrap()],
        port: 80,
        proto,
        node_port: None,
        external_ips: vec![],
        affinity_timeout: None,
        external_local: false,
        internal_local: false,
        endpoints,
    }
}

/// Every kind of rule the proxy writes: several endpoints, affinity, NodePorts,
/// external IPs with the Local policy, UDP, a service without endpoints.
fn ports(generation: u8) -> Vec<ServicePort> {
    let mut web = port(
        "default/web:http:tcp",
        "10.43.0.9",
        Proto::Tcp,
        vec![
            ep("10.42.0.5", true, true),
            ep("10.42.0.6", true, false),
            ep(&format!("10.42.0.{}", 7 + generation), true, true),
        ],
    );
    web.node_port = Some(30080);
    web.external_ips = vec!["192.0.2.10".parse().unwrap()];
    web.external_local = true;
    let mut sticky = port(
        "default/sticky::tcp",
        "10.43.0.10",
        Proto::Tcp,
        vec![ep("10.42.0.8", true, true), ep("10.42.0.9", true, true)],
    );
    sticky.affinity_timeout = Some(600);
    let dns = port(
        "kube-system/dns:dns:udp",
        "10.43.0.10",
        Proto::Udp,
        vec![ep("10.42.0.10", true, true)],
    );
    let empty = port("default/empty::tcp", "10.43.0.11", Proto::Tcp, vec![]);
    let mut out = vec![web, sticky, empty];
    if generation == 0 {
        out.push(dns);
    }
    out
}

fn list(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .expect("nft");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace(table, "TABLE")
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for t in [TEXT, NETLINK] {
            let _ = nft::cleanup(&NftCommand, t);
        }
    }
}

#[test]
fn netlink_changes_program_what_nft_scripts_program() {
    let _cleanup = Cleanup;
    // A pod network that is not whole bytes, so the masks are checked too.
    let cidr = "10.42.0.0/20".parse().unwrap();
    let first = Ruleset::build(&ports(0), cidr);
    let second = Ruleset::build(&ports(1), cidr);
    for t in [TEXT, NETLINK] {
        NftCommand.apply(&nft::skeleton(t)).unwrap();
    }
    for (from, to) in [(&Ruleset::default(), &first), (&first, &second)] {
        let ops = nft::diff(from, to);
        NftCommand.apply(&nft::script(TEXT, &ops)).unwrap();
        NftCommand.apply_ops(NETLINK, &ops).unwrap();
        let (text, netlink) = (list(TEXT), list(NETLINK));
        assert!(text.contains("numgen random mod 3 0 goto"), "{text}");
        assert!(text.contains("update @aff-"), "{text}");
        assert_eq!(text, netlink);
    }

    // A refused batch changes nothing and names the step the kernel refused.
    let rule = proxy::rules::Rule::Goto("no-such-chain".into());
    let ops = [
        nft::Op::AddChain("partial"),
        nft::Op::AddRule {
            chain: "partial",
            rule: &rule,
        },
    ];
    let before = list(NETLINK);
    let err = NftCommand.apply_ops(NETLINK, &ops).unwrap_err().to_string();
    assert!(err.contains("goto no-such-chain"), "{err}");
    assert_eq!(list(NETLINK), before);
}
