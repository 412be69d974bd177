//! Applying rulesets: the fixed skeleton of the table, and the difference between the
//! applied and the wanted ruleset as one transaction (all or nothing): whole tables
//! through `nft -f`, changes as a netlink batch (`netlink.rs`), since `nft` reads every
//! chain and set of the ruleset before each run, which at 10,000 services costs more
//! than the change itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::rules::{
    Key, MAPS, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, Rule, Ruleset, SERVICE_IPS,
    SERVICE_NODEPORTS,
};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(std::io::Error),
    #[error("nft rejected the transaction: {0}")]
    Rejected(String),
    #[error("netlink: {0}")]
    Netlink(std::io::Error),
    #[error("applying rules stopped: {0}")]
    Task(String),
}

/// One step of a change to the proxy's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    AddSet {
        name: &'a str,
        timeout: i32,
    },
    AddChain(&'a str),
    /// Removes every rule of the chain.
    FlushChain(&'a str),
    AddRule {
        chain: &'a str,
        rule: &'a Rule,
    },
    DeleteElement {
        map: &'static str,
        key: &'a Key,
    },
    /// An element whose verdict is `goto <chain>`.
    AddElement {
        map: &'static str,
        key: &'a Key,
        chain: &'a str,
    },
    DeleteChain(&'a str),
    DeleteSet(&'a str),
}

impl Op<'_> {
    /// The nft command for this step in `ip <table>`.
    pub fn command(&self, table: &str) -> String {
        let t = format!("ip {table}");
        match self {
            Op::AddSet { name, timeout } => format!(
                "add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"
            ),
            Op::AddChain(name) => format!("add chain {t} {name}"),
            Op::FlushChain(name) => format!("flush chain {t} {name}"),
            Op::AddRule { chain, rule } => format!("add rule {t} {chain} {rule}"),
            Op::DeleteElement { map, key } => format!("delete element {t} {map} {{ {key} }}"),
            Op::AddElement { map, key, chain } => {
                format!("add element {t} {map} {{ {key} : goto {chain} }}")
            }
            Op::DeleteChain(name) => format!("delete chain {t} {name}"),
            Op::DeleteSet(name) => format!("delete set {t} {name}"),
        }
    }
}

/// `ops` as an nft script.
pub fn script(table: &str, ops: &[Op<'_>]) -> String {
    let mut s = String::new();
    for op in ops {
        line(&mut s, op.command(table));
    }
    s
}

/// The kernel boundary: something that applies nft scripts and changes.
pub trait Nftables: Send + Sync {
    /// Runs an nft script as one transaction.
    fn apply(&self, script: &str) -> Result<(), NftError>;

    /// Applies `ops` to `ip <table>` as one transaction; by default as a script.
    fn apply_ops(&self, table: &str, ops: &[Op<'_>]) -> Result<(), NftError> {
        self.apply(&script(table, ops))
    }
}

/// The real thing: `nft -f -` for scripts, netlink batches for changes.
pub struct NftCommand;

impl Nftables for NftCommand {
    fn apply_ops(&self, table: &str, ops: &[Op<'_>]) -> Result<(), NftError> {
        crate::netlink::apply(table, ops)
    }

    fn apply(&self, script: &str) -> Result<(), NftError> {
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(NftError::Spawn)?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(script.as_bytes())
            .map_err(NftError::Spawn)?;
        let out = child.wait_with_output().map_err(NftError::Spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Rejected(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }
}

fn line(script: &mut String, s: impl AsRef<str>) {
    script.push_str(s.as_ref());
    script.push('\n');
}

/// Creates the table `ip <table>` from scratch: hooks, the dispatch chains, the maps.
/// Whatever an earlier run left in it goes in the same transaction.
pub fn skeleton(table: &str) -> String {
    let t = format!("ip {table}");
    let mut s = String::new();
    line(&mut s, format!("add table {t}"));
    line(&mut s, format!("delete table {t}"));
    line(&mut s, format!("add table {t}"));
    for m in [SERVICE_IPS, NO_ENDPOINT_SERVICES] {
        line(
            &mut s,
            format!("add map {t} {m} {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}"),
        );
    }
    for m in [SERVICE_NODEPORTS, NO_ENDPOINT_NODEPORTS] {
        line(
            &mut s,
            format!("add map {t} {m} {{ type inet_proto . inet_service : verdict ; }}"),
        );
    }
    let chains: [(&str, &[&str]); 6] = [
        ("reject-chain", &["reject"]),
        ("mark-for-masquerade", &["meta mark set meta mark | 0x4000"]),
        (
            "masquerading",
            &[
                "meta mark & 0x4000 == 0 return",
                "meta mark set meta mark ^ 0x4000",
                "masquerade fully-random",
            ],
        ),
        (
            "services",
            &[
                "ip daddr . meta l4proto . th dport vmap @service-ips",
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
            ],
        ),
        (
            "endpoints-check",
            &[
                "ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
            ],
        ),
        ("nat-postrouting", &["jump masquerading"]),
    ];
    for (name, rules) in chains {
        if name == "nat-postrouting" {
            line(
                &mut s,
                format!(
                    "add chain {t} {name} {{ type nat hook postrouting priority 100 ; policy accept ; }}"
                ),
            );
        } else {
            line(&mut s, format!("add chain {t} {name}"));
        }
        for r in rules {
            line(&mut s, format!("add rule {t} {name} {r}"));
        }
    }
    for (name, hook) in [("nat-prerouting", "prerouting"), ("nat-output", "output")] {
        line(
            &mut s,
            format!(
                "add chain {t} {name} {{ type nat hook {hook} priority -100 ; policy accept ; }}"
            ),
        );
        line(&mut s, format!("add rule {t} {name} jump services"));
    }
    // Before DNAT: refuse connections to services that have no endpoints.
    for (name, hook) in [
        ("filter-prerouting", "prerouting"),
        ("filter-output", "output"),
    ] {
        line(
            &mut s,
            format!(
                "add chain {t} {name} {{ type filter hook {hook} priority -110 ; policy accept ; }}"
            ),
        );
        line(
            &mut s,
            format!("add rule {t} {name} ct state new jump endpoints-check"),
        );
    }
    s
}

/// The steps that turn `from` into `to`; empty when nothing changes.
pub fn diff<'a>(from: &'a Ruleset, to: &'a Ruleset) -> Vec<Op<'a>> {
    let mut ops = Vec::new();
    for (name, timeout) in &to.sets {
        if from.sets.get(name) != Some(timeout) {
            ops.push(Op::AddSet {
                name,
                timeout: *timeout,
            });
        }
    }
    // Declare every new chain first, so rules and elements may refer to any of them.
    for name in to.chains.keys().filter(|n| !from.chains.contains_key(*n)) {
        ops.push(Op::AddChain(name));
    }
    for (name, rules) in &to.chains {
        match from.chains.get(name) {
            Some(old) if old == rules => continue,
            Some(_) => ops.push(Op::FlushChain(name)),
            None => {}
        }
        for rule in rules {
            ops.push(Op::AddRule { chain: name, rule });
        }
    }
    static EMPTY: BTreeMap<Key, String> = BTreeMap::new();
    for map in MAPS {
        let (old, new) = (
            from.elements.get(map).unwrap_or(&EMPTY),
            to.elements.get(map).unwrap_or(&EMPTY),
        );
        for (key, chain) in old {
            if new.get(key) != Some(chain) {
                ops.push(Op::DeleteElement { map, key });
            }
        }
        for (key, chain) in new {
            if old.get(key) != Some(chain) {
                ops.push(Op::AddElement { map, key, chain });
            }
        }
    }
    // Chains nothing refers to any more can go now, in the same transaction. They may
    // refer to each other (ext → svc → sep): the kernel refuses to delete a chain that
    // is still jumped to (EBUSY), so empty them all first.
    let gone: Vec<&String> = from
        .chains
        .keys()
        .filter(|n| !to.chains.contains_key(*n))
        .collect();
    ops.extend(gone.iter().map(|n| Op::FlushChain(n)));
    ops.extend(gone.iter().map(|n| Op::DeleteChain(n)));
    for name in from.sets.keys().filter(|n| !to.sets.contains_key(*n)) {
        ops.push(Op::DeleteSet(name));
    }
    ops
}

/// Removes everything the proxy programmed in `ip <table>` (`--cleanup`, uninstall).
pub fn cleanup(nft: &dyn Nftables, table: &str) -> Result<(), NftError> {
    nft.apply(&format!("add table ip {table}\ndelete table ip {table}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(chains: &[(&str, Rule)]) -> Ruleset {
        let mut rs = Ruleset::default();
        for (name, rule) in chains {
            rs.chains.insert(name.to_string(), vec![rule.clone()]);
        }
        rs
    }

    #[test]
    fn removed_chains_are_emptied_before_any_is_deleted() {
        // ext-a jumps to svc-a, which jumps to sep-a: sorted by name, sep-a would be
        // deleted while svc-a still refers to it.
        let from = ruleset(&[
            ("ext-a", Rule::Goto("svc-a".into())),
            ("svc-a", Rule::Goto("sep-a".into())),
            (
                "sep-a",
                Rule::Dnat {
                    proto: crate::model::Proto::Tcp,
                    ip: "10.42.0.5".parse().unwrap(),
                    port: 80,
                },
            ),
        ]);
        let s = script("t", &diff(&from, &Ruleset::default()));
        let lines: Vec<&str> = s.lines().collect();
        let last_flush = lines.iter().rposition(|l| l.starts_with("flush chain"));
        let first_delete = lines.iter().position(|l| l.starts_with("delete chain"));
        assert_eq!(lines.len(), 6, "{s}");
        assert!(last_flush < first_delete, "{s}");
    }
}
