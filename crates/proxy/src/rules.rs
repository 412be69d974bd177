//! The desired nftables state for a set of service ports, as plain data: chains with
//! their rules, map and set elements and affinity sets. Computing it does no I/O; the
//! `nft` module turns the difference between two states into a transaction.
//!
//! One chain per service port (and one more for its external addresses when they
//! need other rules): its rules DNAT straight to the endpoints. There are no
//! per-endpoint chains (upstream has them): on every commit that adds a jump, a goto
//! or a DNAT, nf_tables revalidates every chain reachable from the base chains of
//! the tables it touches, so each chain a service has is paid for on every change
//! to any service of its table. What an endpoint chain did instead lives elsewhere:
//! hairpin masquerading is a postrouting lookup of `source . destination` in a set of
//! `endpoint . endpoint` pairs (`tables.rs`), and ClientIP affinity is a check and an
//! update of the endpoint's client set in the rule that DNATs to it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::model::{Endpoint, Proto, ServicePort};

/// The default table name.
pub const TABLE: &str = "k8rs-proxy";
pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
/// The set of `endpoint . endpoint` pairs: a connection from an endpoint DNATed back
/// to itself (hairpin) is masqueraded, so the endpoint sees a reply it can route.
pub const HAIRPIN: &str = "hairpin-endpoints";
/// The chain that refuses connections to services without endpoints.
pub const REJECT: &str = "reject-chain";
/// The maps and sets whose elements services claim (`Ruleset::elements`).
pub const MAPS: [&str; 5] = [
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NO_ENDPOINT_NODEPORTS,
    HAIRPIN,
];

/// Where a rule sends marked traffic to be masqueraded on the way out.
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";

/// How a DNAT rule picks its endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// `ip saddr @<set>`: the client was sent to this endpoint before (ClientIP
    /// affinity; the set is the endpoint's).
    Returning(String),
    /// `numgen random mod <modulus> == 0`: taken with probability 1/modulus. A run of
    /// these (1/n, 1/(n-1), …, then `Always`) spreads evenly; unlike an inline
    /// `numgen … map { … }` it needs no anonymous set, whose binding the kernel checks
    /// against the whole transaction (quadratic when a first sync programs thousands
    /// of services at once).
    Random(u32),
    /// Whatever reaches the rule.
    Always,
}

/// One rule of a service or external chain, as data: rendered as nft text
/// (`Display`) for `nft -f`, or encoded for netlink (`netlink/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `ip saddr != <cidr> jump mark-for-masquerade`: traffic from outside the pod network.
    MasqueradeUnlessFrom(Ipv4Net),
    /// `jump mark-for-masquerade`.
    Masquerade,
    /// `goto <chain>`.
    Goto(String),
    /// `<pick> [update @<affinity> { ip saddr }] meta l4proto <proto> dnat to <ip>:<port>`:
    /// DNAT ends the chain; with affinity the client is remembered in the endpoint's set.
    Dnat {
        pick: Pick,
        affinity: Option<String>,
        proto: Proto,
        ip: Ipv4Addr,
        port: u16,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MasqueradeUnlessFrom(net) => {
                write!(f, "ip saddr != {} jump {MARK_FOR_MASQUERADE}", net.trunc())
            }
            Self::Masquerade => write!(f, "jump {MARK_FOR_MASQUERADE}"),
            Self::Goto(chain) => write!(f, "goto {chain}"),
            Self::Dnat {
                pick,
                affinity,
                proto,
                ip,
                port,
            } => {
                match pick {
                    Pick::Returning(set) => write!(f, "ip saddr @{set} ")?,
                    Pick::Random(modulus) => write!(f, "numgen random mod {modulus} == 0 ")?,
                    Pick::Always => {}
                }
                if let Some(set) = affinity {
                    write!(f, "update @{set} {{ ip saddr }} ")?;
                }
                write!(f, "meta l4proto {} dnat to {ip}:{port}", proto.nft())
            }
        }
    }
}

/// The key of a map or set element: an address, protocol and port for
/// `service-ips` and `no-endpoint-services`, a protocol and port for the NodePort
/// maps, an endpoint address (as the pair `ip . ip`) for `hairpin-endpoints`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Addr(Ipv4Addr, Proto, u16),
    NodePort(Proto, u16),
    Hairpin(Ipv4Addr),
}

impl Key {
    /// Whether the element carries a verdict (`: goto <chain>`); hairpin pairs are
    /// set elements, with no value.
    pub fn has_verdict(&self) -> bool {
        !matches!(self, Self::Hairpin(_))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(ip, proto, port) => write!(f, "{ip} . {} . {port}", proto.nft()),
            Self::NodePort(proto, port) => write!(f, "{} . {port}", proto.nft()),
            Self::Hairpin(ip) => write!(f, "{ip} . {ip}"),
        }
    }
}

/// Everything the proxy programs besides the fixed skeleton.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Chain name → its rules.
    pub chains: BTreeMap<String, Vec<Rule>>,
    /// Map name → element key → the chain its verdict goes to (empty for set
    /// elements, `Key::has_verdict`).
    pub elements: BTreeMap<&'static str, BTreeMap<Key, String>>,
    /// ClientIP affinity sets: name → timeout seconds.
    pub sets: BTreeMap<String, i32>,
}

/// A short, stable name fragment for an identity (chain names stay well under nft's limit).
fn hash(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn affinity_set(sp: &ServicePort, e: &Endpoint) -> String {
    format!("aff-{}", hash(&format!("{}/{}:{}", sp.id, e.ip, e.port)))
}

/// Rules that spread traffic over `eps`: a returning client to its endpoint first
/// (affinity), then a random pick.
fn spread(sp: &ServicePort, eps: &[&Endpoint], rules: &mut Vec<Rule>) {
    let dnat = |e: &Endpoint, pick: Pick| Rule::Dnat {
        pick,
        affinity: sp.affinity_timeout.map(|_| affinity_set(sp, e)),
        proto: sp.proto,
        ip: e.ip,
        port: e.port,
    };
    if sp.affinity_timeout.is_some() {
        for e in eps {
            rules.push(dnat(e, Pick::Returning(affinity_set(sp, e))));
        }
    }
    let n = eps.len();
    for (i, e) in eps.iter().enumerate() {
        let pick = if i + 1 == n {
            Pick::Always
        } else {
            Pick::Random(u32::try_from(n - i).unwrap_or(u32::MAX))
        };
        rules.push(dnat(e, pick));
    }
}

impl Ruleset {
    pub(crate) fn element(&mut self, map: &'static str, key: Key, chain: &str) {
        self.elements
            .entry(map)
            .or_default()
            .insert(key, chain.to_string());
    }

    /// The ruleset for `ports`; `cluster_cidr` is the pod network (traffic from outside
    /// it is masqueraded so replies come back through this node).
    pub fn build(ports: &[ServicePort], cluster_cidr: Ipv4Net) -> Self {
        let mut rs = Self::default();
        for m in MAPS {
            rs.elements.insert(m, BTreeMap::new());
        }
        for sp in ports {
            rs.add_port(sp, cluster_cidr);
        }
        rs
    }

    fn add_port(&mut self, sp: &ServicePort, cluster_cidr: Ipv4Net) {
        let proto = sp.proto;
        let h = hash(&sp.id);
        let (svc, ext) = (format!("svc-{h}"), format!("ext-{h}"));
        let internal = sp.usable(sp.internal_local);
        let external = sp.usable(sp.external_local);

        for ip in &sp.cluster_ips {
            let key = Key::Addr(*ip, proto, sp.port);
            if internal.is_empty() {
                self.element(NO_ENDPOINT_SERVICES, key, REJECT);
            } else {
                self.element(SERVICE_IPS, key, &svc);
            }
        }
        let exposed = !sp.external_ips.is_empty() || sp.node_port.is_some();
        for ip in &sp.external_ips {
            let key = Key::Addr(*ip, proto, sp.port);
            if external.is_empty() {
                self.element(NO_ENDPOINT_SERVICES, key, REJECT);
            } else {
                self.element(SERVICE_IPS, key, &ext);
            }
        }
        if let Some(np) = sp.node_port {
            let key = Key::NodePort(proto, np);
            if external.is_empty() {
                self.element(NO_ENDPOINT_NODEPORTS, key, REJECT);
            } else {
                self.element(SERVICE_NODEPORTS, key, &ext);
            }
        }

        if !internal.is_empty() {
            let mut rules = vec![Rule::MasqueradeUnlessFrom(cluster_cidr)];
            spread(sp, &internal, &mut rules);
            self.chains.insert(svc.clone(), rules);
        }
        let external = if exposed { external } else { Vec::new() };
        if !external.is_empty() {
            let rules = if sp.external_local {
                // Local policy keeps the client address: no masquerade, local endpoints only.
                let mut r = Vec::new();
                spread(sp, &external, &mut r);
                r
            } else if internal.is_empty() {
                let mut r = vec![Rule::Masquerade];
                spread(sp, &external, &mut r);
                r
            } else {
                vec![Rule::Masquerade, Rule::Goto(svc.clone())]
            };
            self.chains.insert(ext, rules);
        }
        // Every endpoint a rule may DNAT to: its hairpin pair and affinity set.
        for e in internal.iter().chain(&external) {
            self.element(HAIRPIN, Key::Hairpin(e.ip), "");
            if let Some(timeout) = sp.affinity_timeout {
                self.sets.insert(affinity_set(sp, e), timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests;
