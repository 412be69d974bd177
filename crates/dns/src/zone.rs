//! The cluster's names, as CoreDNS's kubernetes plugin serves them: a snapshot of
//! Services and EndpointSlices turned into records, and the lookup of one question.
//! Pure data, no I/O: the server turns [`Answer`]s into DNS messages.
//!
//! Names are lower-case, dot-separated and without the trailing dot.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The TTL of every answer (CoreDNS's kubernetes plugin default).
pub const TTL: u32 = 5;

/// The record types the zone knows about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    A,
    Aaaa,
    Cname,
    Srv,
    Ptr,
    Soa,
    Ns,
    /// ANY and every type the zone has no records of.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
}

impl Data {
    fn kind(&self) -> Kind {
        match self {
            Data::A(_) => Kind::A,
            Data::Cname(_) => Kind::Cname,
            Data::Srv { .. } => Kind::Srv,
            Data::Ptr(_) => Kind::Ptr,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    pub name: String,
    pub data: Data,
}

/// The answer to one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Not a name of ours: ask the upstream resolvers.
    Forward,
    /// A name of ours that does not exist (NXDOMAIN, with the zone's SOA).
    NxDomain { zone: String },
    /// A name of ours: the records of the asked type (none: NODATA, with the SOA).
    Records {
        zone: String,
        answers: Vec<Rr>,
        additionals: Vec<Rr>,
    },
}

/// What a Service is in DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SvcKind {
    ClusterIp(Vec<Ipv4Addr>),
    Headless,
    ExternalName(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PortName {
    name: String,
    proto: String,
    port: u16,
}

#[derive(Clone, Debug)]
struct Endpoint {
    ip: Ipv4Addr,
    /// The hostname label of the endpoint (its own, or the dashed IP).
    label: String,
    ports: Vec<PortName>,
}

#[derive(Clone, Debug)]
struct SvcEntry {
    kind: SvcKind,
    ports: Vec<PortName>,
    endpoints: Vec<Endpoint>,
}

/// The records of a cluster, built from the informers' caches.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    domain: String,
    services: HashMap<(String, String), SvcEntry>,
    namespaces: BTreeSet<String>,
    ptr: HashMap<Ipv4Addr, Vec<String>>,
}

/// `10.0.0.1` → `10-0-0-1`.
fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// `d.c.b.a.in-addr.arpa` → `a.b.c.d`.
fn from_reverse(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts.reverse();
    parts.join(".").parse().ok()
}

/// Whether `name` is `zone` or below it.
fn within(name: &str, zone: &str) -> bool {
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|head| head.ends_with('.'))
}

impl Zone {
    /// The zone of `domain` (`cluster.local`) from the cached objects.
    pub fn build(domain: &str, services: &[&Service], slices: &[&EndpointSlice]) -> Self {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for s in slices {
            let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            else {
                continue;
            };
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            by_service.entry((ns, svc.clone())).or_default().push(s);
        }
        let mut zone = Zone {
            domain,
            ..Default::default()
        };
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let Some(spec) = &svc.spec else { continue };
            let kind = if spec.type_.as_deref() == Some("ExternalName") {
                match &spec.external_name {
                    Some(target) => {
                        SvcKind::ExternalName(target.trim_end_matches('.').to_ascii_lowercase())
                    }
                    None => continue,
                }
            } else if spec.cluster_ip.as_deref() == Some("None") {
                SvcKind::Headless
            } else {
                let ips: Vec<Ipv4Addr> = spec
                    .cluster_ips
                    .clone()
                    .unwrap_or_else(|| spec.cluster_ip.clone().into_iter().collect())
                    .iter()
                    .filter_map(|ip| ip.parse().ok())
                    .collect();
                if ips.is_empty() {
                    continue;
                }
                SvcKind::ClusterIp(ips)
            };
            let ports = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some(PortName {
                        name: p.name.clone().filter(|n| !n.is_empty())?,
                        proto: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port: u16::try_from(p.port).ok()?,
                    })
                })
                .collect();
            let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
            let key = (ns.clone(), name.clone());
            let mut endpoints = Vec::new();
            if kind == SvcKind::Headless {
                for slice in by_service.get(&key).into_iter().flatten() {
                    if slice.address_type != "IPv4" {
                        continue;
                    }
                    let slice_ports: Vec<PortName> = slice
                        .ports
                        .iter()
                        .flatten()
                        .filter_map(|p| {
                            Some(PortName {
                                name: p.name.clone().filter(|n| !n.is_empty())?,
                                proto: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                                port: u16::try_from(p.port?).ok()?,
                            })
                        })
                        .collect();
                    for e in &slice.endpoints {
                        let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                        if !ready && !publish_not_ready {
                            continue;
                        }
                        for ip in e.addresses.iter().filter_map(|a| a.parse().ok()) {
                            let label = e
                                .hostname
                                .clone()
                                .filter(|h| !h.is_empty())
                                .map(|h| h.to_ascii_lowercase())
                                .unwrap_or_else(|| dashed(ip));
                            endpoints.push(Endpoint {
                                ip,
                                label,
                                ports: slice_ports.clone(),
                            });
                        }
                    }
                }
                endpoints.sort_by_key(|e| (e.ip, e.label.clone()));
                endpoints.dedup_by(|a, b| a.ip == b.ip && a.label == b.label);
            }
            let svc_name = format!("{name}.{ns}.svc.{}", zone.domain);
            match &kind {
                SvcKind::ClusterIp(ips) => {
                    for ip in ips {
                        zone.ptr.entry(*ip).or_default().push(svc_name.clone());
                    }
                }
                SvcKind::Headless => {
                    for e in &endpoints {
                        zone.ptr
                            .entry(e.ip)
                            .or_default()
                            .push(format!("{}.{svc_name}", e.label));
                    }
                }
                SvcKind::ExternalName(_) => {}
            }
            zone.namespaces.insert(ns.clone());
            zone.services.insert(
                key,
                SvcEntry {
                    kind,
                    ports,
                    endpoints,
                },
            );
        }
        for names in zone.ptr.values_mut() {
            names.sort();
            names.dedup();
        }
        zone
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The answer to a question for `name` of type `kind`.
    pub fn answer(&self, name: &str, kind: Kind) -> Answer {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if within(&name, "in-addr.arpa") {
            return self.reverse(&name, kind);
        }
        if !within(&name, &self.domain) {
            return Answer::Forward;
        }
        let zone = self.domain.clone();
        let Some(records) = self.records(&name) else {
            return Answer::NxDomain { zone };
        };
        let cname = records.iter().find(|r| r.data.kind() == Kind::Cname);
        let answers: Vec<Rr> = match (cname, kind) {
            (Some(c), k) if k != Kind::Cname => vec![c.clone()],
            _ => records
                .into_iter()
                .filter(|r| r.data.kind() == kind)
                .collect(),
        };
        // SRV targets' addresses, so clients need no second query.
        let mut additionals = Vec::new();
        for rr in &answers {
            if let Data::Srv { target, .. } = &rr.data {
                for a in self.records(target).unwrap_or_default() {
                    if matches!(a.data, Data::A(_)) && !additionals.contains(&a) {
                        additionals.push(a);
                    }
                }
            }
        }
        Answer::Records {
            zone,
            answers,
            additionals,
        }
    }

    fn reverse(&self, name: &str, kind: Kind) -> Answer {
        // As CoreDNS's `fallthrough in-addr.arpa`: addresses that are not ours go upstream.
        let Some(names) = from_reverse(name).and_then(|ip| self.ptr.get(&ip)) else {
            return Answer::Forward;
        };
        let answers = if kind == Kind::Ptr {
            names
                .iter()
                .map(|n| Rr {
                    name: name.to_string(),
                    data: Data::Ptr(n.clone()),
                })
                .collect()
        } else {
            Vec::new()
        };
        Answer::Records {
            zone: "in-addr.arpa".into(),
            answers,
            additionals: Vec::new(),
        }
    }

    /// Every record of `name` (inside the domain), or None if the name does not exist.
    fn records(&self, name: &str) -> Option<Vec<Rr>> {
        let rel = if name == self.domain {
            ""
        } else {
            name.strip_suffix(&self.domain)?.strip_suffix('.')?
        };
        let labels: Vec<&str> = if rel.is_empty() {
            Vec::new()
        } else {
            rel.split('.').collect()
        };
        let rr = |data: Data| Rr {
            name: name.to_string(),
            data,
        };
        match labels.as_slice() {
            // The zone apex and the empty non-terminals exist, without records.
            [] | ["svc"] | ["pod"] => Some(Vec::new()),
            [ns, "svc"] => self.namespaces.contains(*ns).then(Vec::new),
            [ip, _ns, "pod"] => {
                let ip: Ipv4Addr = ip.replace('-', ".").parse().ok()?;
                Some(vec![rr(Data::A(ip))])
            }
            [svc, ns, "svc"] => {
                let s = self.services.get(&(ns.to_string(), svc.to_string()))?;
                let base = format!("{svc}.{ns}.svc.{}", self.domain);
                let mut out = match &s.kind {
                    SvcKind::ClusterIp(ips) => ips.iter().map(|ip| rr(Data::A(*ip))).collect(),
                    SvcKind::Headless => s.endpoints.iter().map(|e| rr(Data::A(e.ip))).collect(),
                    SvcKind::ExternalName(target) => vec![rr(Data::Cname(target.clone()))],
                };
                // SRV of the service name itself: every named port.
                for p in &s.ports {
                    out.extend(self.srv(s, &base, &p.name, &p.proto).into_iter().map(rr));
                }
                Some(out)
            }
            [label, svc, ns, "svc"] => {
                let s = self.services.get(&(ns.to_string(), svc.to_string()))?;
                if let Some(proto) = label.strip_prefix('_') {
                    // `_<proto>.<svc>…`: an empty non-terminal when a port uses it.
                    return s
                        .ports
                        .iter()
                        .any(|p| p.proto.eq_ignore_ascii_case(proto))
                        .then(Vec::new);
                }
                let ips: Vec<Rr> = s
                    .endpoints
                    .iter()
                    .filter(|e| e.label == *label)
                    .map(|e| rr(Data::A(e.ip)))
                    .collect();
                (!ips.is_empty()).then_some(ips)
            }
            [port, proto, svc, ns, "svc"] => {
                let (port, proto) = (port.strip_prefix('_')?, proto.strip_prefix('_')?);
                let s = self.services.get(&(ns.to_string(), svc.to_string()))?;
                let base = format!("{svc}.{ns}.svc.{}", self.domain);
                let out: Vec<Rr> = self
                    .srv(s, &base, port, proto)
                    .into_iter()
                    .map(rr)
                    .collect();
                (!out.is_empty()).then_some(out)
            }
            _ => None,
        }
    }

    /// The SRV records of one named port of a service.
    fn srv(&self, s: &SvcEntry, base: &str, port: &str, proto: &str) -> Vec<Data> {
        let matches = |p: &&PortName| p.name == port && p.proto.eq_ignore_ascii_case(proto);
        match &s.kind {
            SvcKind::ClusterIp(_) => s
                .ports
                .iter()
                .filter(matches)
                .map(|p| Data::Srv {
                    priority: 0,
                    weight: 100,
                    port: p.port,
                    target: base.to_string(),
                })
                .collect(),
            SvcKind::Headless => {
                let targets: Vec<(u16, String)> = s
                    .endpoints
                    .iter()
                    .filter_map(|e| {
                        let p = e.ports.iter().find(matches)?;
                        Some((p.port, format!("{}.{base}", e.label)))
                    })
                    .collect();
                let weight = u16::try_from(100 / targets.len().max(1)).unwrap_or(100);
                targets
                    .into_iter()
                    .map(|(port, target)| Data::Srv {
                        priority: 0,
                        weight,
                        port,
                        target,
                    })
                    .collect()
            }
            SvcKind::ExternalName(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
