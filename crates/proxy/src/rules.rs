//! The desired nftables state for a set of service ports, as plain data: chains with
//! their rules, verdict-map elements and affinity sets. Computing it does no I/O; the
//! `nft` module turns the difference between two states into a transaction.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::model::{Endpoint, ServicePort};

/// The default table name.
pub const TABLE: &str = "k8rs-proxy";
pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
pub const MAPS: [&str; 4] = [
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NO_ENDPOINT_NODEPORTS,
];

/// Everything the proxy programs besides the fixed skeleton.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Chain name → its rules.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Map name → element key → verdict.
    pub elements: BTreeMap<&'static str, BTreeMap<String, String>>,
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
fn spread(sp: &ServicePort, eps: &[&Endpoint], rules: &mut Vec<String>) {
    if sp.affinity_timeout.is_some() {
        for e in eps {
            rules.push(format!(
                "ip saddr @{} goto {}",
                affinity_set(sp, e),
                endpoint_chain(sp, e)
            ));
        }
    }
    if let [only] = eps {
        rules.push(format!("goto {}", endpoint_chain(sp, only)));
    } else {
        let arms: Vec<String> = eps
            .iter()
            .enumerate()
            .map(|(i, e)| format!("{i} : goto {}", endpoint_chain(sp, e)))
            .collect();
        rules.push(format!(
            "numgen random mod {} vmap {{ {} }}",
            eps.len(),
            arms.join(", ")
        ));
    }
}

impl Ruleset {
    fn element(&mut self, map: &'static str, key: String, verdict: String) {
        self.elements.entry(map).or_default().insert(key, verdict);
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
        let proto = sp.proto.nft();
        let h = hash(&sp.id);
        let (svc, ext) = (format!("svc-{h}"), format!("ext-{h}"));
        let internal = sp.usable(sp.internal_local);
        let external = sp.usable(sp.external_local);
        let all = sp.usable(false);

        for ip in &sp.cluster_ips {
            let key = format!("{ip} . {proto} . {}", sp.port);
            if internal.is_empty() {
                self.element(NO_ENDPOINT_SERVICES, key, "goto reject-chain".into());
            } else {
                self.element(SERVICE_IPS, key, format!("goto {svc}"));
            }
        }
        let exposed = !sp.external_ips.is_empty() || sp.node_port.is_some();
        for ip in &sp.external_ips {
            let key = format!("{ip} . {proto} . {}", sp.port);
            if external.is_empty() {
                self.element(NO_ENDPOINT_SERVICES, key, "goto reject-chain".into());
            } else {
                self.element(SERVICE_IPS, key, format!("goto {ext}"));
            }
        }
        if let Some(np) = sp.node_port {
            let key = format!("{proto} . {np}");
            if external.is_empty() {
                self.element(NO_ENDPOINT_NODEPORTS, key, "goto reject-chain".into());
            } else {
                self.element(SERVICE_NODEPORTS, key, format!("goto {ext}"));
            }
        }

        if !internal.is_empty() {
            let mut rules = vec![format!(
                "ip saddr != {cluster_cidr} jump mark-for-masquerade"
            )];
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
                let mut r = vec!["jump mark-for-masquerade".to_string()];
                spread(sp, &external, &mut r);
                r
            } else {
                vec![
                    "jump mark-for-masquerade".to_string(),
                    format!("goto {svc}"),
                ]
            };
            self.chains.insert(ext, rules);
        }
        for e in all {
            let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", e.ip)];
            if let Some(timeout) = sp.affinity_timeout {
                let set = affinity_set(sp, e);
                rules.push(format!("update @{set} {{ ip saddr }}"));
                self.sets.insert(set, timeout);
            }
            rules.push(format!("meta l4proto {proto} dnat to {}:{}", e.ip, e.port));
            self.chains.insert(endpoint_chain(sp, e), rules);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;

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
        let svc = &rs.elements[SERVICE_IPS]["10.43.0.9 . tcp . 80"];
        let rules = &rs.chains[svc.trim_start_matches("goto ")];
        assert!(
            rules[1].starts_with("numgen random mod 2 vmap"),
            "{rules:?}"
        );
        assert!(rs.elements[SERVICE_NODEPORTS].contains_key("tcp . 30080"));
        assert_eq!(
            rs.chains.keys().filter(|c| c.starts_with("sep-")).count(),
            2,
            "not-ready endpoints get no chain"
        );

        let empty = Ruleset::build(&[port(vec![ep("10.42.0.7", false)])], cidr);
        assert_eq!(
            empty.elements[NO_ENDPOINT_SERVICES]["10.43.0.9 . tcp . 80"],
            "goto reject-chain"
        );
        assert!(empty.elements[SERVICE_IPS].is_empty());
    }
}
