//! Applying rulesets: the fixed skeleton of the table, and the difference between the
//! applied and the wanted ruleset as one `nft -f` transaction (all or nothing).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::rules::{
    MAPS, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, Ruleset, SERVICE_IPS, SERVICE_NODEPORTS,
};

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run nft: {0}")]
    Spawn(std::io::Error),
    #[error("nft rejected the transaction: {0}")]
    Rejected(String),
}

/// The kernel boundary: something that applies nft scripts.
pub trait Nftables: Send + Sync {
    fn apply(&self, script: &str) -> Result<(), NftError>;
}

/// The real thing: `nft -f -`.
pub struct NftCommand;

impl Nftables for NftCommand {
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

/// The transaction that turns `from` into `to` in `ip <table>`, or `None` when nothing
/// changes.
pub fn diff(table: &str, from: &Ruleset, to: &Ruleset) -> Option<String> {
    let t = format!("ip {table}");
    let mut s = String::new();
    for (name, timeout) in &to.sets {
        if from.sets.get(name) != Some(timeout) {
            line(
                &mut s,
                format!(
                    "add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"
                ),
            );
        }
    }
    // Declare every new chain first, so rules and elements may refer to any of them.
    for name in to.chains.keys().filter(|n| !from.chains.contains_key(*n)) {
        line(&mut s, format!("add chain {t} {name}"));
    }
    for (name, rules) in &to.chains {
        match from.chains.get(name) {
            Some(old) if old == rules => continue,
            Some(_) => line(&mut s, format!("flush chain {t} {name}")),
            None => {}
        }
        for r in rules {
            line(&mut s, format!("add rule {t} {name} {r}"));
        }
    }
    let empty = Default::default();
    for map in MAPS {
        let (old, new) = (
            from.elements.get(map).unwrap_or(&empty),
            to.elements.get(map).unwrap_or(&empty),
        );
        for (k, v) in old {
            if new.get(k) != Some(v) {
                line(&mut s, format!("delete element {t} {map} {{ {k} }}"));
            }
        }
        for (k, v) in new {
            if old.get(k) != Some(v) {
                line(&mut s, format!("add element {t} {map} {{ {k} : {v} }}"));
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
    for name in &gone {
        line(&mut s, format!("flush chain {t} {name}"));
    }
    for name in &gone {
        line(&mut s, format!("delete chain {t} {name}"));
    }
    for name in from.sets.keys().filter(|n| !to.sets.contains_key(*n)) {
        line(&mut s, format!("delete set {t} {name}"));
    }
    (!s.is_empty()).then_some(s)
}

/// Removes everything the proxy programmed in `ip <table>` (`--cleanup`, uninstall).
pub fn cleanup(nft: &dyn Nftables, table: &str) -> Result<(), NftError> {
    nft.apply(&format!("add table ip {table}\ndelete table ip {table}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(chains: &[(&str, &[&str])]) -> Ruleset {
        let mut rs = Ruleset::default();
        for (name, rules) in chains {
            rs.chains.insert(
                name.to_string(),
                rules.iter().map(|r| r.to_string()).collect(),
            );
        }
        rs
    }

    #[test]
    fn removed_chains_are_emptied_before_any_is_deleted() {
        // ext-a jumps to svc-a, which jumps to sep-a: sorted by name, sep-a would be
        // deleted while svc-a still refers to it.
        let from = ruleset(&[
            ("ext-a", &["goto svc-a"]),
            ("svc-a", &["goto sep-a"]),
            ("sep-a", &["meta l4proto tcp dnat to 10.42.0.5:80"]),
        ]);
        let script = diff("t", &from, &Ruleset::default()).unwrap();
        let lines: Vec<&str> = script.lines().collect();
        let last_flush = lines.iter().rposition(|l| l.starts_with("flush chain"));
        let first_delete = lines.iter().position(|l| l.starts_with("delete chain"));
        assert_eq!(lines.len(), 6, "{script}");
        assert!(last_flush < first_delete, "{script}");
    }
}
