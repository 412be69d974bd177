//! Loading the proxy's tables whole replaces an earlier run's, shards it no longer
//! uses included, and `nft::cleanup` (`k8rs … --cleanup`) removes every table of the
//! proxy and nothing else, checked against the real kernel's ruleset. Needs root.

use std::collections::HashMap;
use std::process::Command;

use proxy::model::{Endpoint, Proto, ServicePort};
use proxy::nft::{self, NftCommand, Nftables};
use proxy::programmed::{Programmed, ServiceKey};
use proxy::rules::Ruleset;
use proxy::tables::Tables;

const MAIN: &str = "k8rs-proxy-test-cleanup";
/// Another proxy's table whose name starts like ours: cleanup must leave it.
const NEIGHBOUR: &str = "k8rs-proxy-test-cleanup-other";

fn service(i: usize) -> (ServiceKey, Ruleset) {
    let sp = ServicePort {
        id: format!("default/svc-{i}:http:tcp"),
        cluster_ips: vec![format!("10.43.1.{i}").parse().unwrap()],
        port: 80,
        proto: Proto::Tcp,
        node_port: Some(30100 + i as u16),
        external_ips: vec![],
        affinity_timeout: Some(60),
        external_local: false,
        internal_local: false,
        // Every other service has no endpoints: its key goes to the main table.
        endpoints: i
            .is_multiple_of(2)
            .then(|| Endpoint {
                ip: format!("10.42.1.{i}").parse().unwrap(),
                port: 8080,
                ready: true,
                serving: true,
                terminating: false,
                local: true,
            })
            .into_iter()
            .collect(),
    };
    let rs = Ruleset::build(&[sp], "10.42.0.0/16".parse().unwrap());
    (("default".into(), format!("svc-{i}")), rs)
}

/// A whole load of 12 services into `tables`, as the proxy's first sync does it.
fn load(tables: &Tables) {
    let wanted: HashMap<ServiceKey, Option<Ruleset>> =
        (0..12).map(service).map(|(k, rs)| (k, Some(rs))).collect();
    let change = Programmed::new(tables.clone()).change(&wanted);
    nft::load(&NftCommand, tables, &nft::diff_tables(tables, &change)).unwrap();
}

fn ours() -> Vec<String> {
    let mut t: Vec<String> = NftCommand
        .tables()
        .unwrap()
        .into_iter()
        .filter(|t| t.starts_with(MAIN))
        .collect();
    t.sort();
    t
}

fn list(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for t in ours() {
            let _ = NftCommand.apply(&format!("delete table ip {t}\n"));
        }
    }
}

#[test]
fn cleanup_removes_the_main_table_and_every_shard() {
    let _cleanup = Cleanup;
    NftCommand
        .apply(&format!("add table ip {NEIGHBOUR}\n"))
        .unwrap();

    // A run with 6 shards, then a restart with 4: shards 4 and 5 go.
    load(&Tables::new(MAIN, 6));
    assert_eq!(ours().len(), 1 + 6 + 1);
    let tables = Tables::new(MAIN, 4);
    load(&tables);
    let mut want: Vec<String> = tables.names().to_vec();
    want.push(NEIGHBOUR.into());
    want.sort();
    assert_eq!(ours(), want);
    // The services with endpoints are DNATed in the shards, the others rejected by
    // the main table.
    let shards: String = tables.names()[1..].iter().map(|t| list(t)).collect();
    assert_eq!(shards.matches(": goto svc-").count(), 6, "{shards}");
    assert_eq!(list(MAIN).matches(": goto reject-chain").count(), 12);

    let removed = nft::cleanup(&NftCommand, MAIN).unwrap();
    let mut removed_sorted = removed.clone();
    removed_sorted.sort();
    let mut names = tables.names().to_vec();
    names.sort();
    assert_eq!(removed_sorted, names);
    assert_eq!(ours(), [NEIGHBOUR]);
    // Nothing left to remove: a second cleanup succeeds and names nothing.
    assert!(nft::cleanup(&NftCommand, MAIN).unwrap().is_empty());
}
