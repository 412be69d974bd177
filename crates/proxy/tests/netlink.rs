//! Changes sent as netlink batches program exactly what the same changes as an
//! `nft -f` script program: two proxies' tables (a main table and shards each), one
//! per path, listed by the real `nft` and compared line by line, after a first load
//! and after a change. Needs root.

use std::collections::HashMap;
use std::process::Command;

use proxy::model::{Endpoint, Proto, ServicePort};
use proxy::nft::{self, NftCommand, Nftables};
use proxy::programmed::{Programmed, ServiceKey};
use proxy::rules::Ruleset;
use proxy::tables::Tables;

const TEXT: &str = "k8rs-proxy-test-text";
const NETLINK: &str = "k8rs-proxy-test-netlink";
/// Few enough that the four services share some, enough that they use several.
const SHARDS: usize = 3;

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

/// Each service's part of the ruleset; those of generation 0 gone since, `None`.
fn wanted(generation: u8) -> HashMap<ServiceKey, Option<Ruleset>> {
    // A pod network that is not whole bytes, so the masks are checked too.
    let cidr = "10.42.0.0/20".parse().unwrap();
    let service = |p: &ServicePort| {
        let (ns, rest) = p.id.split_once('/').unwrap();
        (ns.to_string(), rest.split(':').next().unwrap().to_string())
    };
    let mut w: HashMap<ServiceKey, Option<Ruleset>> =
        ports(0).iter().map(|p| (service(p), None)).collect();
    for p in ports(generation) {
        w.insert(service(&p), Some(Ruleset::build(&[p], cidr)));
    }
    w
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
    let (text, netlink) = (Tables::new(TEXT, SHARDS), Tables::new(NETLINK, SHARDS));
    let mut programmed = [text.clone(), netlink.clone()].map(Programmed::new);
    for t in [&text, &netlink] {
        NftCommand.apply(&t.skeleton(&[])).unwrap();
    }
    for generation in [0, 1] {
        let w = wanted(generation);
        let change = programmed[0].change(&w);
        NftCommand
            .apply(&nft::script(&nft::diff_tables(&text, &change)))
            .unwrap();
        let change = programmed[1].change(&w);
        NftCommand
            .apply_ops(&nft::diff_tables(&netlink, &change))
            .unwrap();
        for p in &mut programmed {
            p.commit(w.clone());
        }
        let listed: Vec<(String, String)> = (0..=SHARDS)
            .map(|i| (list(text.name(i)), list(netlink.name(i))))
            .collect();
        let all: String = listed.iter().map(|(t, _)| t.as_str()).collect();
        assert!(
            all.contains("numgen random mod 3 0 meta l4proto tcp dnat to 10.42.0.5:8080"),
            "{all}"
        );
        assert!(all.contains("ip saddr @aff-"), "{all}");
        assert!(all.contains("update @aff-"), "{all}");
        assert!(all.contains("no-endpoint-services"), "{all}");
        assert!(!all.contains("sep-"), "no chain per endpoint:\n{all}");
        // Every endpoint in use once, 10.42.0.8 (two services' in generation 1) too.
        let main = &listed[0].0;
        let pairs = main.matches(" . 10.42.0.").count();
        assert_eq!(pairs, if generation == 0 { 6 } else { 4 }, "{main}");
        let used = listed[1..]
            .iter()
            .filter(|(t, _)| t.contains(" : goto "))
            .count();
        assert!(used >= 2, "the services share one shard:\n{all}");
        for (t, n) in listed {
            assert_eq!(t, n);
        }
    }

    // A refused batch changes nothing and names the step the kernel refused.
    let rule = proxy::rules::Rule::Goto("no-such-chain".into());
    let shard = netlink.name(1);
    let ops = vec![
        nft::Op::AddChain("partial"),
        nft::Op::AddRule {
            chain: "partial",
            rule: &rule,
        },
    ];
    let before = list(shard);
    let err = NftCommand
        .apply_ops(&nft::in_table(shard, ops))
        .unwrap_err()
        .to_string();
    assert!(err.contains("goto no-such-chain"), "{err}");
    assert_eq!(list(shard), before);
    // The next batch (on the same socket, kept open) gets its own answers.
    NftCommand
        .apply_ops(&nft::in_table(shard, vec![nft::Op::AddChain("after")]))
        .unwrap();
    assert!(list(shard).contains("chain after {"), "{}", list(shard));
}
