//! From an Ingress backend (a Service and a port, by number or by name) to the
//! addresses that serve it: the Service's port gives the port's name, and the
//! EndpointSlices of the Service give, for that name, the target port and the ready
//! endpoints (as upstream's controllers, which send traffic to endpoints directly
//! rather than through the ClusterIP).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service port as an Ingress names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// The ready endpoints of one backend, handed out in turn.
#[derive(Debug, Default)]
pub struct Pool {
    pub addrs: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(addrs: Vec<SocketAddr>) -> Pool {
        Pool {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// The next endpoint (round robin), or `None` when none is ready.
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[n % self.addrs.len()])
    }
}

/// The Services and EndpointSlices of the cluster, indexed by namespace and name.
#[derive(Default)]
pub struct Endpoints<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
}

impl<'a> Endpoints<'a> {
    pub fn new(services: &'a [Arc<Service>], slices: &'a [Arc<EndpointSlice>]) -> Self {
        let mut e = Endpoints::default();
        for s in services {
            if let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) {
                e.services.insert((ns, name), s);
            }
        }
        for s in slices {
            let service = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL));
            if let (Some(ns), Some(svc)) = (&s.metadata.namespace, service) {
                e.slices.entry((ns, svc)).or_default().push(s);
            }
        }
        e
    }

    /// The ready endpoints of `service`'s `port` in `namespace`, sorted; empty when
    /// the Service or the port does not exist or nothing is ready.
    /// For an ExternalName Service, the name and port requests go to, resolved when a
    /// request comes (as ingress-nginx does): the Service port's numeric targetPort,
    /// else its port, else the number the Ingress gives.
    pub fn external_name(
        &self,
        namespace: &str,
        service: &str,
        port: &PortRef,
    ) -> Option<(String, u16)> {
        let spec = self.services.get(&(namespace, service))?.spec.as_ref()?;
        if spec.type_.as_deref() != Some("ExternalName") {
            return None;
        }
        let host = spec.external_name.clone().filter(|h| !h.is_empty())?;
        let found = spec.ports.iter().flatten().find(|p| match port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        let number = match (found, port) {
            (Some(p), _) => match &p.target_port {
                Some(IntOrString::Int(t)) if *t != 0 => *t,
                _ => p.port,
            },
            (None, PortRef::Number(n)) => *n,
            (None, PortRef::Name(_)) => return None,
        };
        Some((host, u16::try_from(number).ok()?))
    }

    pub fn resolve(&self, namespace: &str, service: &str, port: &PortRef) -> Vec<SocketAddr> {
        let Some(svc) = self.services.get(&(namespace, service)) else {
            return Vec::new();
        };
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or_default();
        let found = ports.iter().find(|p| match port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        let Some(found) = found else {
            return Vec::new();
        };
        if found.protocol.as_deref().is_some_and(|p| p != "TCP") {
            return Vec::new();
        }
        // Slices name their ports after the Service's ports (unnamed: empty).
        let name = found.name.as_deref().unwrap_or_default();
        let mut addrs = Vec::new();
        for slice in self.slices.get(&(namespace, service)).into_iter().flatten() {
            if slice.address_type == "FQDN" {
                continue;
            }
            let port = slice.ports.iter().flatten().find(|p| {
                p.name.as_deref().unwrap_or_default() == name
                    && p.protocol.as_deref().unwrap_or("TCP") == "TCP"
            });
            let Some(port) = port
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for ep in &slice.endpoints {
                // An unknown readiness counts as ready (the EndpointSlice API's rule).
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                addrs.extend(
                    ep.addresses
                        .iter()
                        .filter_map(|a| a.parse::<IpAddr>().ok())
                        .map(|ip| SocketAddr::new(ip, port)),
                );
            }
        }
        addrs.sort();
        addrs.dedup();
        addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(ports: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"ports": ports},
            }))
            .unwrap(),
        )
    }

    fn slice(
        name: &str,
        ports: serde_json::Value,
        endpoints: serde_json::Value,
    ) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default",
                    "labels": {SERVICE_NAME_LABEL: "web"}},
                "addressType": "IPv4",
                "ports": ports,
                "endpoints": endpoints,
            }))
            .unwrap(),
        )
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_port_by_number_or_name_reaches_its_target_port_on_ready_endpoints() {
        let services = [service(json!([
            {"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
            {"name": "admin", "port": 9000, "targetPort": 9001, "protocol": "TCP"},
        ]))];
        let slices = [
            slice(
                "web-1",
                json!([{"name": "http", "port": 8080, "protocol": "TCP"},
                       {"name": "admin", "port": 9001, "protocol": "TCP"}]),
                json!([
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                    {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                    {"addresses": ["10.0.0.1"]},
                ]),
            ),
            slice(
                "web-2",
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
                json!([{"addresses": ["10.0.1.1"], "conditions": {"ready": true}}]),
            ),
        ];
        let e = Endpoints::new(&services, &slices);
        let want = addrs(&["10.0.0.1:8080", "10.0.0.2:8080", "10.0.1.1:8080"]);
        assert_eq!(e.resolve("default", "web", &PortRef::Number(80)), want);
        assert_eq!(
            e.resolve("default", "web", &PortRef::Name("http".into())),
            want
        );
        assert_eq!(
            e.resolve("default", "web", &PortRef::Name("admin".into())),
            addrs(&["10.0.0.1:9001", "10.0.0.2:9001"])
        );
        // The Service's port, not the target port, names the backend.
        assert!(
            e.resolve("default", "web", &PortRef::Number(8080))
                .is_empty()
        );
        assert!(
            e.resolve("default", "web", &PortRef::Name("nope".into()))
                .is_empty()
        );
        assert!(
            e.resolve("default", "other", &PortRef::Number(80))
                .is_empty()
        );
        assert!(
            e.resolve("elsewhere", "web", &PortRef::Number(80))
                .is_empty()
        );
    }

    #[test]
    fn an_unnamed_port_and_a_service_without_slices() {
        let services = [service(json!([{"port": 80, "targetPort": 8080}]))];
        let slices = [slice(
            "web-1",
            json!([{"port": 8080, "protocol": "TCP"}]),
            json!([{"addresses": ["10.0.0.9"], "conditions": {"ready": true}}]),
        )];
        let e = Endpoints::new(&services, &slices);
        assert_eq!(
            e.resolve("default", "web", &PortRef::Number(80)),
            addrs(&["10.0.0.9:8080"])
        );
        let e = Endpoints::new(&services, &[]);
        assert!(e.resolve("default", "web", &PortRef::Number(80)).is_empty());
    }

    #[test]
    fn the_pool_goes_round_robin() {
        let pool = Pool::new(addrs(&["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]));
        let picked: Vec<_> = (0..6).map(|_| pool.pick().unwrap().to_string()).collect();
        assert_eq!(
            picked,
            [
                "10.0.0.1:80",
                "10.0.0.2:80",
                "10.0.0.3:80",
                "10.0.0.1:80",
                "10.0.0.2:80",
                "10.0.0.3:80"
            ]
        );
        assert_eq!(Pool::new(Vec::new()).pick(), None);
    }
}
