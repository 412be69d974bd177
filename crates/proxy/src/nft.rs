//! Applying rulesets: the difference between the applied and the wanted ruleset of
//! each table, all tables in one transaction (all or nothing): whole loads through
//! `nft -f` (with the skeleton from `tables.rs`), changes as a netlink batch
//! (`netlink/`), since `nft` reads every chain and set of the ruleset before each run,
//! which at 10,000 services costs more than the change itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::programmed::Change;
use crate::rules::{Key, MAPS, Rule, Ruleset};
use crate::tables::{self, Tables};

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

/// One step of a change to one of the proxy's tables.
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
    /// An element, of a verdict map `goto <chain>`, of a set (`None`) just its key.
    AddElement {
        map: &'static str,
        key: &'a Key,
        chain: Option<&'a str>,
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
            Op::AddElement {
                map,
                key,
                chain: Some(chain),
            } => format!("add element {t} {map} {{ {key} : goto {chain} }}"),
            Op::AddElement {
                map,
                key,
                chain: None,
            } => format!("add element {t} {map} {{ {key} }}"),
            Op::DeleteChain(name) => format!("delete chain {t} {name}"),
            Op::DeleteSet(name) => format!("delete set {t} {name}"),
        }
    }
}

/// An [`Op`] in the table it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<'a> {
    pub table: &'a str,
    pub op: Op<'a>,
}

impl Step<'_> {
    pub fn command(&self) -> String {
        self.op.command(self.table)
    }
}

/// `ops`, all in `ip <table>`.
pub fn in_table<'a>(table: &'a str, ops: Vec<Op<'a>>) -> Vec<Step<'a>> {
    ops.into_iter().map(|op| Step { table, op }).collect()
}

/// `steps` as an nft script.
pub fn script(steps: &[Step<'_>]) -> String {
    let mut s = String::new();
    for step in steps {
        s.push_str(&step.command());
        s.push('\n');
    }
    s
}

/// The kernel boundary: something that applies nft scripts and changes.
pub trait Nftables: Send + Sync {
    /// Runs an nft script as one transaction.
    fn apply(&self, script: &str) -> Result<(), NftError>;

    /// Applies `steps` as one transaction; by default as a script.
    fn apply_ops(&self, steps: &[Step<'_>]) -> Result<(), NftError> {
        self.apply(&script(steps))
    }

    /// The names of the `ip` family's tables.
    fn tables(&self) -> Result<Vec<String>, NftError>;
}

/// The real thing: `nft -f -` for scripts, netlink batches for changes.
pub struct NftCommand;

impl Nftables for NftCommand {
    fn apply_ops(&self, steps: &[Step<'_>]) -> Result<(), NftError> {
        crate::netlink::apply(steps)
    }

    fn tables(&self) -> Result<Vec<String>, NftError> {
        // Lists table names only: no dump of chains or sets.
        let out = Command::new("nft")
            .args(["list", "tables", "ip"])
            .output()
            .map_err(NftError::Spawn)?;
        if !out.status.success() {
            return Err(NftError::Rejected(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("table ip "))
            .map(str::to_string)
            .collect())
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
                let chain = key.has_verdict().then_some(chain.as_str());
                ops.push(Op::AddElement { map, key, chain });
            }
        }
    }
    // Chains nothing refers to any more can go now, in the same transaction. They may
    // refer to each other (ext → svc): the kernel refuses to delete a chain that
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

/// The steps of `change`, table by table. No step refers to another table (a jump
/// cannot leave its table), so their order across tables does not matter.
pub fn diff_tables<'a>(tables: &'a Tables, change: &'a Change) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    for (i, (from, to)) in change.from.iter().zip(&change.to).enumerate() {
        steps.extend(in_table(tables.name(i), diff(from, to)));
    }
    steps
}

/// Loads every table whole in one transaction: the skeleton, shards of an earlier run
/// with more shards deleted, then `steps`.
pub fn load(nft: &dyn Nftables, tables: &Tables, steps: &[Step<'_>]) -> Result<(), NftError> {
    let existing = nft.tables()?;
    nft.apply(&(tables.skeleton(&existing) + &script(steps)))
}

/// Removes everything the proxy whose main table is `ip <main>` programmed: the main
/// table and its shards, however many (`--cleanup`, uninstall). The names of the
/// tables removed.
pub fn cleanup(nft: &dyn Nftables, main: &str) -> Result<Vec<String>, NftError> {
    let ours: Vec<String> = nft
        .tables()?
        .into_iter()
        .filter(|t| tables::is_ours(main, t))
        .collect();
    if !ours.is_empty() {
        // `add` first: a table gone meanwhile does not fail the transaction.
        let script: String = ours
            .iter()
            .map(|t| format!("add table ip {t}\ndelete table ip {t}\n"))
            .collect();
        nft.apply(&script)?;
    }
    Ok(ours)
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
        // ext-a goes to svc-a: sorted by name, svc-a would be deleted while ext-a
        // still refers to it.
        let from = ruleset(&[
            ("ext-a", Rule::Goto("svc-a".into())),
            ("svc-a", Rule::Goto("svc-b".into())),
            ("svc-b", Rule::Masquerade),
        ]);
        let s = script(&in_table("t", diff(&from, &Ruleset::default())));
        let lines: Vec<&str> = s.lines().collect();
        let last_flush = lines.iter().rposition(|l| l.starts_with("flush chain"));
        let first_delete = lines.iter().position(|l| l.starts_with("delete chain"));
        assert_eq!(lines.len(), 6, "{s}");
        assert!(last_flush < first_delete, "{s}");
    }

    #[test]
    fn set_elements_are_added_without_a_verdict() {
        let mut to = Ruleset::default();
        let key = Key::Hairpin("10.42.0.5".parse().unwrap());
        to.element(crate::rules::HAIRPIN, key, "");
        let s = script(&in_table("t", diff(&Ruleset::default(), &to)));
        assert_eq!(
            s,
            "add element ip t hairpin-endpoints { 10.42.0.5 . 10.42.0.5 }\n"
        );
        let s = script(&in_table("t", diff(&to, &Ruleset::default())));
        assert_eq!(
            s,
            "delete element ip t hairpin-endpoints { 10.42.0.5 . 10.42.0.5 }\n"
        );
    }
}
