//! The desired nftables state for a set of service ports, as plain data: chains with
//! their rules, verdict-map elements and affinity sets. Computing it does no I/O; the
//! `nft` module turns the difference between two states into a transaction.

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
/// The chain that refuses connections to services without endpoints.
pub const REJECT: &str = "reject-chain";
pub const MAPS: [&str; 4] = [
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NO_ENDPOINT_NODEPORTS,
];

/// Where a rule sends marked traffic to be masqueraded on the way out.
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";

/// One rule of a service, external or endpoint chain, as data: rendered as nft text
/// (`Display`) for `nft -f`, or encoded for netlink (`netlink.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `ip saddr != <cidr> jump mark-for-masquerade`: traffic from outside the pod network.
    MasqueradeUnlessFrom(Ipv4Net),
    /// `ip saddr <ip> jump mark-for-masquerade`: an endpoint reaching itself (hairpin).
    MasqueradeFrom(Ipv4Addr),
    /// `jump mark-for-masquerade`.
    Masquerade,
    /// `ip saddr @<set> goto <chain>`: ClientIP affinity to an endpoint seen before.
    AffinityGoto { set: String, chain: String },
    /// `update @<set> { ip saddr }`: remember the client for affinity.
    AffinityUpdate(String),
    /// `numgen random mod <modulus> == 0 goto <chain>`: taken with probability
    /// 1/modulus. A chain of these (1/n, 1/(n-1), …, then a plain goto) spreads
    /// evenly; unlike an inline `numgen … vmap { … }` it needs no anonymous set,
    /// whose binding the kernel checks against the whole transaction (quadratic when
    /// a first sync programs thousands of services at once).
    RandomGoto { modulus: u32, chain: String },
    /// `goto <chain>`.
    Goto(String),
    /// `meta l4proto <proto> dnat to <ip>:<port>`.
    Dnat {
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
            Self::MasqueradeFrom(ip) => write!(f, "ip saddr {ip} jump {MARK_FOR_MASQUERADE}"),
            Self::Masquerade => write!(f, "jump {MARK_FOR_MASQUERADE}"),
            Self::AffinityGoto { set, chain } => write!(f, "ip saddr @{set} goto {chain}"),
            Self::AffinityUpdate(set) => write!(f, "update @{set} {{ ip saddr }}"),
            Self::RandomGoto { modulus, chain } => {
                write!(f, "numgen random mod {modulus} == 0 goto {chain}")
            }
            Self::Goto(chain) => write!(f, "goto {chain}"),
            Self::Dnat { proto, ip, port } => {
                write!(f, "meta l4proto {} dnat to {ip}:{port}", proto.nft())
            }
        }
    }
}

/// The key of a verdict-map element: an address, protocol and port for
/// `service-ips` and `no-endpoint-services`, a protocol and port for the NodePort maps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Addr(Ipv4Addr, Proto, u16),
    NodePort(Proto, u16),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(ip, proto, port) => write!(f, "{ip} . {} . {port}", proto.nft()),
            Self::NodePort(proto, port) => write!(f, "{} . {port}", proto.nft()),
        }
    }
}

/// Everything the proxy programs besides the fixed skeleton.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Chain name → its rules.
    pub chains: BTreeMap<String, Vec<Rule>>,
    /// Map name → element key → the chain its verdict goes to.
    pub elements: BTreeMap<&'static str, BTreeMap<Key, String>>,
    /// ClientIP affinity sets: name → timeout seconds.
    pub sets: BTreeMap<String, i32>,
}

/// A short, stable name fragment for an identity (chain names stay well under nft's limit).
fn hash(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn endpoint_chain(sp: &ServicePort, e: &Endpoint) -> String {
    format!("sep-{}", hash(&format!("{}/{}:{}", sp.id, e.ip, e.port)))
}

fn affinity_set(sp: &ServicePort, e: &Endpoint) -> String {
    format!("aff-{}", hash(&format!("{}/{}:{}", sp.id, e.ip, e.port)))
}

/// Rules that spread traffic over `eps`: affinity first, then a random pick.
fn spread(sp: &ServicePort, eps: &[&Endpoint], rules: &mut Vec<Rule>) {
    if sp.affinity_timeout.is_some() {
        for e in eps {
            rules.push(Rule::AffinityGoto {
                set: affinity_set(sp, e),
                chain: endpoint_chain(sp, e),
            });
        }
    }
    let n = eps.len();
    for (i, e) in eps.iter().enumerate() {
        let chain = endpoint_chain(sp, e);
        rules.push(if i + 1 == n {
            Rule::Goto(chain)
        } else {
            Rule::RandomGoto {
                modulus: u32::try_from(n - i).unwrap_or(u32::MAX),
                chain,
            }
        });
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
        let all = sp.usable(false);

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
        if exposed && !external.is_empty() {
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
        for e in all {
            let mut rules = vec![Rule::MasqueradeFrom(e.ip)];
            if let Some(timeout) = sp.affinity_timeout {
                let set = affinity_set(sp, e);
                rules.push(Rule::AffinityUpdate(set.clone()));
                self.sets.insert(set, timeout);
            }
            rules.push(Rule::Dnat {
                proto,
                ip: e.ip,
                port: e.port,
            });
            self.chains.insert(endpoint_chain(sp, e), rules);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint_chain_of(r: &Rule) -> &str {
        match r {
            Rule::RandomGoto { chain, .. } | Rule::Goto(chain) => chain,
            _ => panic!("{r:?} goes to no endpoint"),
        }
    }

    fn port(endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            id: "default/web:http:tcp".into(),
            cluster_ips: vec!["10.43.0.9".parse().unwrap()],
            port: 80,
            proto: Proto::Tcp,
            node_port: Some(30080),
            external_ips: vec![],
            affinity_timeout: None,
            external_local: false,
            internal_local: false,
            endpoints,
        }
    }

    fn ep(ip: &str, ready: bool) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port: 8080,
            ready,
            serving: ready,
            terminating: false,
            local: true,
        }
    }

    #[test]
    fn services_with_endpoints_dnat_and_without_reject() {
        let cidr: Ipv4Net = "10.42.0.0/16".parse().unwrap();
        let rs = Ruleset::build(
            &[port(vec![
                ep("10.42.0.5", true),
                ep("10.42.0.6", true),
                ep("10.42.0.7", false),
            ])],
            cidr,
        );
        let key = Key::Addr("10.43.0.9".parse().unwrap(), Proto::Tcp, 80);
        let svc = &rs.elements[SERVICE_IPS][&key];
        let rules = &rs.chains[svc];
        assert!(
            matches!(&rules[1], Rule::RandomGoto { modulus: 2, .. }),
            "{rules:?}"
        );
        assert!(matches!(&rules[2], Rule::Goto(_)), "{rules:?}");
        assert_eq!(
            rules[1].to_string(),
            format!(
                "numgen random mod 2 == 0 goto {}",
                endpoint_chain_of(&rules[1])
            )
        );
        assert!(rs.elements[SERVICE_NODEPORTS].contains_key(&Key::NodePort(Proto::Tcp, 30080)));
        assert_eq!(
            rs.chains.keys().filter(|c| c.starts_with("sep-")).count(),
            2,
            "not-ready endpoints get no chain"
        );

        let empty = Ruleset::build(&[port(vec![ep("10.42.0.7", false)])], cidr);
        assert_eq!(empty.elements[NO_ENDPOINT_SERVICES][&key], REJECT);
        assert!(empty.elements[SERVICE_IPS].is_empty());
    }

    #[test]
    fn endpoints_are_picked_with_falling_odds_for_an_even_spread() {
        // 1/3, then 1/2 of the rest, then the rest: each endpoint gets a third.
        let cidr: Ipv4Net = "10.42.0.0/16".parse().unwrap();
        let rs = Ruleset::build(
            &[port(vec![
                ep("10.42.0.5", true),
                ep("10.42.0.6", true),
                ep("10.42.0.7", true),
            ])],
            cidr,
        );
        let key = Key::Addr("10.43.0.9".parse().unwrap(), Proto::Tcp, 80);
        let rules = &rs.chains[&rs.elements[SERVICE_IPS][&key]];
        let odds: Vec<Option<u32>> = rules[1..]
            .iter()
            .map(|r| match r {
                Rule::RandomGoto { modulus, .. } => Some(*modulus),
                Rule::Goto(_) => None,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(odds, [Some(3), Some(2), None]);
    }
}
