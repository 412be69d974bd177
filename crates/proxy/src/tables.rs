//! Which nftables table holds what. The proxy owns a main table (`ip <table>`) for
//! what is not per service: the filter hooks that reject connections to services
//! without endpoints, and masquerading on the way out (marked traffic, and hairpin
//! connections by the `hairpin-endpoints` set). Each service's chains, affinity
//! sets and DNAT map elements live in one of K shard tables (`ip <table>-svc-<i>`),
//! picked by a stable hash of the service's namespace and name; each shard has its own
//! nat hooks and maps.
//!
//! Why shards: on every transaction that adds a jump or goto, nf_tables revalidates
//! every chain reachable from the base chains of the tables it touched (validation
//! state is kept per table), ~50 ms at 10,000 services in one table. A change to one
//! service now revalidates its shard only. NAT makes shards safe: at a hook, the nat
//! core stops running nat chains once one of them has set up a binding for the
//! connection, so the one shard whose map holds the destination DNATs and the others
//! are skipped; a key is in at most one shard's map (`programmed.rs`).

use sha2::{Digest, Sha256};

use crate::programmed::ServiceKey;
use crate::rules::{
    HAIRPIN, MARK_FOR_MASQUERADE, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, REJECT,
};
use crate::rules::{SERVICE_IPS, SERVICE_NODEPORTS};

/// Shards at any size: at 10,000 services each holds ~1/16 of the chains, so a
/// commit revalidates ~3 ms of rules instead of ~50 ms; a new connection that matches
/// no service passes 16 small nat chains (one map lookup each).
pub const DEFAULT_SHARDS: usize = 16;

/// The tables of one proxy: index 0 is the main table, 1..=K the shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    names: Vec<String>,
}

/// Whether `name` is the table `main` or one of its shards (of any count).
pub fn is_ours(main: &str, name: &str) -> bool {
    name == main
        || name
            .strip_prefix(main)
            .and_then(|rest| rest.strip_prefix("-svc-"))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

fn line(script: &mut String, s: impl AsRef<str>) {
    script.push_str(s.as_ref());
    script.push('\n');
}

/// `ip <table>` emptied: created if missing, deleted, created again (one transaction
/// replaces whatever an earlier run left).
fn fresh(s: &mut String, t: &str) {
    line(s, format!("add table {t}"));
    line(s, format!("delete table {t}"));
    line(s, format!("add table {t}"));
}

fn chain(s: &mut String, t: &str, name: &str, hook: Option<(&str, &str, i32)>, rules: &[&str]) {
    match hook {
        Some((ty, hook, prio)) => line(
            s,
            format!(
                "add chain {t} {name} {{ type {ty} hook {hook} priority {prio} ; policy accept ; }}"
            ),
        ),
        None => line(s, format!("add chain {t} {name}")),
    }
    for r in rules {
        line(s, format!("add rule {t} {name} {r}"));
    }
}

impl Tables {
    /// `main` and `shards` (at least one) shard tables.
    pub fn new(main: &str, shards: usize) -> Self {
        let mut names = vec![main.to_string()];
        names.extend((0..shards.max(1)).map(|i| format!("{main}-svc-{i}")));
        Self { names }
    }

    pub fn main(&self) -> &str {
        &self.names[0]
    }

    /// Every table's name, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The index of the shard holding `svc`'s chains and sets: the same on every run
    /// (SHA-256, not the process's randomly seeded hasher).
    pub fn shard_of(&self, svc: &ServiceKey) -> usize {
        let d = Sha256::new()
            .chain_update(svc.0.as_bytes())
            .chain_update(b"/")
            .chain_update(svc.1.as_bytes())
            .finalize();
        let h = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
        let shards = (self.names.len() - 1) as u64;
        1 + usize::try_from(h % shards).expect("shard index fits")
    }

    /// The index of the table whose `map` holds an element claimed by `svc`: the
    /// rejection maps and the hairpin set are in the main table, the DNAT maps in the
    /// service's shard.
    pub fn element_table(&self, map: &str, svc: &ServiceKey) -> usize {
        if [NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS, HAIRPIN].contains(&map) {
            0
        } else {
            self.shard_of(svc)
        }
    }

    /// The script that creates every table from scratch with its hooks, dispatch
    /// chains and maps, and deletes the shards of an earlier run with more of them
    /// (`existing`: the names of the `ip` tables now in the kernel).
    pub fn skeleton(&self, existing: &[String]) -> String {
        let mut s = String::new();
        for stale in existing
            .iter()
            .filter(|t| is_ours(self.main(), t) && !self.names.contains(t))
        {
            line(&mut s, format!("add table ip {stale}"));
            line(&mut s, format!("delete table ip {stale}"));
        }
        self.main_skeleton(&mut s);
        for shard in &self.names[1..] {
            shard_skeleton(&mut s, &format!("ip {shard}"));
        }
        s
    }

    fn main_skeleton(&self, s: &mut String) {
        let t = format!("ip {}", self.main());
        fresh(s, &t);
        line(
            s,
            format!(
                "add map {t} {NO_ENDPOINT_SERVICES} {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}"
            ),
        );
        line(
            s,
            format!(
                "add map {t} {NO_ENDPOINT_NODEPORTS} {{ type inet_proto . inet_service : verdict ; }}"
            ),
        );
        chain(s, &t, REJECT, None, &["reject"]);
        chain(
            s,
            &t,
            "masquerading",
            None,
            &[
                "meta mark & 0x4000 == 0 return",
                "meta mark set meta mark ^ 0x4000",
                "masquerade fully-random",
            ],
        );
        chain(
            s,
            &t,
            "endpoints-check",
            None,
            &[
                &format!("ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"),
                &format!(
                    "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
                ),
            ],
        );
        line(
            s,
            format!("add set {t} {HAIRPIN} {{ type ipv4_addr . ipv4_addr ; }}"),
        );
        let post = ("nat", "postrouting", 100);
        // An endpoint reaching itself through a service: its own address as the source
        // would make it answer itself, so it is masqueraded (upstream marks these in
        // the endpoint's chain; there are none here, `rules.rs`).
        let hairpin = format!(
            "ct status dnat ip saddr . ip daddr @{HAIRPIN} meta mark set meta mark | 0x4000"
        );
        chain(
            s,
            &t,
            "nat-postrouting",
            Some(post),
            &[&hairpin, "jump masquerading"],
        );
        // Before DNAT: refuse connections to services that have no endpoints.
        for (name, hook) in [
            ("filter-prerouting", "prerouting"),
            ("filter-output", "output"),
        ] {
            let jump = ["ct state new jump endpoints-check"];
            chain(s, &t, name, Some(("filter", hook, -110)), &jump);
        }
    }
}

/// A shard: its DNAT maps, nat hooks that look them up, and its own copy of
/// `mark-for-masquerade` (a jump cannot leave its table).
fn shard_skeleton(s: &mut String, t: &str) {
    fresh(s, t);
    line(
        s,
        format!(
            "add map {t} {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}"
        ),
    );
    line(
        s,
        format!("add map {t} {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict ; }}"),
    );
    let mark = ["meta mark set meta mark | 0x4000"];
    chain(s, t, MARK_FOR_MASQUERADE, None, &mark);
    chain(
        s,
        t,
        "services",
        None,
        &[
            &format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
            &format!(
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
            ),
        ],
    );
    for (name, hook) in [("nat-prerouting", "prerouting"), ("nat-output", "output")] {
        chain(s, t, name, Some(("nat", hook, -100)), &["jump services"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_found_by_name_and_stale_ones_deleted() {
        assert!(is_ours("k8rs-proxy", "k8rs-proxy"));
        assert!(is_ours("k8rs-proxy", "k8rs-proxy-svc-12"));
        assert!(!is_ours("k8rs-proxy", "k8rs-proxy-svc-"));
        assert!(!is_ours("k8rs-proxy", "k8rs-proxy-test"));
        assert!(!is_ours("k8rs-proxy", "k8rs-proxy-svc-1x"));

        let t = Tables::new("p", 2);
        assert_eq!(t.names(), ["p", "p-svc-0", "p-svc-1"]);
        let existing: Vec<String> = ["p", "p-svc-0", "p-svc-5", "other"]
            .map(String::from)
            .into();
        let s = t.skeleton(&existing);
        assert!(
            s.starts_with("add table ip p-svc-5\ndelete table ip p-svc-5\n"),
            "{s}"
        );
        assert!(!s.contains("other"), "{s}");
        assert!(s.contains("add chain ip p-svc-1 nat-output"), "{s}");
    }

    #[test]
    fn services_spread_over_every_shard_and_stay_put() {
        let t = Tables::new("p", 4);
        let shards: std::collections::BTreeSet<usize> = (0..64)
            .map(|i| t.shard_of(&("default".into(), format!("svc-{i}"))))
            .collect();
        assert_eq!(shards, (1..=4).collect());
        let web = ("default".to_string(), "web".to_string());
        assert_eq!(t.shard_of(&web), Tables::new("q", 4).shard_of(&web));
        assert_eq!(t.element_table(NO_ENDPOINT_SERVICES, &web), 0);
        assert_eq!(t.element_table(HAIRPIN, &web), 0);
        assert_eq!(t.element_table(SERVICE_IPS, &web), t.shard_of(&web));
    }
}
