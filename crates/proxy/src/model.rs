//! Services and their endpoints as the proxy sees them: one entry per service port,
//! with the addresses it is reached at and the endpoints traffic may go to.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("UDP") => Self::Udp,
            Some("SCTP") => Self::Sctp,
            _ => Self::Tcp,
        }
    }

    pub fn nft(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// On this node (for `Local` traffic policies).
    pub local: bool,
}

/// One port of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name:port-name`, stable and unique.
    pub id: String,
    pub cluster_ips: Vec<Ipv4Addr>,
    pub port: u16,
    pub proto: Proto,
    pub node_port: Option<u16>,
    /// externalIPs and LoadBalancer ingress IPs: reached from outside the cluster.
    pub external_ips: Vec<Ipv4Addr>,
    /// ClientIP session affinity timeout in seconds.
    pub affinity_timeout: Option<i32>,
    pub external_local: bool,
    pub internal_local: bool,
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// Endpoints traffic may go to: ready ones, else serving-terminating ones (upstream's
    /// fallback), restricted to local ones when `local`.
    pub fn usable(&self, local: bool) -> Vec<&Endpoint> {
        let pool = |pred: &dyn Fn(&Endpoint) -> bool| -> Vec<&Endpoint> {
            self.endpoints
                .iter()
                .filter(|e| (!local || e.local) && pred(e))
                .collect()
        };
        let ready = pool(&|e| e.ready);
        if !ready.is_empty() {
            return ready;
        }
        pool(&|e| e.serving && e.terminating)
    }
}

fn ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// The service ports of `svc` with endpoints from its slices. Headless and
/// ExternalName services have none (DNS answers for them).
pub fn service_ports(
    svc: &Service,
    slices: &[&EndpointSlice],
    node_name: &str,
) -> Vec<ServicePort> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let cluster_ips: Vec<Ipv4Addr> = spec
        .cluster_ips
        .clone()
        .unwrap_or_else(|| spec.cluster_ip.clone().into_iter().collect())
        .iter()
        .filter_map(|ip| ipv4(ip))
        .collect();
    if cluster_ips.is_empty() {
        return Vec::new();
    }
    let mut external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ipv4(ip))
        .collect();
    if let Some(lb) = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
    {
        external_ips.extend(lb.iter().filter_map(|i| i.ip.as_deref().and_then(ipv4)));
    }
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(10_800)
    });
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let port_name = p.name.clone().unwrap_or_default();
        let proto = Proto::parse(p.protocol.as_deref());
        let mut endpoints: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
        for slice in slices {
            if slice.address_type != "IPv4" {
                continue;
            }
            let Some(sp) = slice.ports.iter().flatten().find(|sp| {
                sp.name.clone().unwrap_or_default() == port_name
                    && Proto::parse(sp.protocol.as_deref()) == proto
            }) else {
                continue;
            };
            let Some(port) = sp.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            for e in &slice.endpoints {
                let cond = e.conditions.clone().unwrap_or_default();
                for ip in e.addresses.iter().filter_map(|a| ipv4(a)) {
                    endpoints.insert(
                        (ip, port),
                        Endpoint {
                            ip,
                            port,
                            ready: cond.ready.unwrap_or(true),
                            serving: cond.serving.unwrap_or(cond.ready.unwrap_or(true)),
                            terminating: cond.terminating.unwrap_or(false),
                            local: e.node_name.as_deref() == Some(node_name),
                        },
                    );
                }
            }
        }
        out.push(ServicePort {
            id: format!("{ns}/{name}:{port_name}:{}", proto.nft()),
            cluster_ips: cluster_ips.clone(),
            port: u16::try_from(p.port).unwrap_or(0),
            proto,
            node_port: p
                .node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0),
            external_ips: external_ips.clone(),
            affinity_timeout,
            external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            endpoints: endpoints.into_values().collect(),
        });
    }
    out
}
