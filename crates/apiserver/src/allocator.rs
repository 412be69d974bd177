//! Service ClusterIPs and NodePorts. Each allocation is its own store key, created with
//! create-if-absent, so two servers can never hand out the same address or port and
//! allocations survive restarts: ClusterIPs as networking.k8s.io IPAddress objects at
//! `/registry/ipaddresses/<ip>` (upstream's MultiCIDRServiceAllocator layout), node
//! ports at `/registry/k8rs/nodeports/<port>`. Dynamic ClusterIPs avoid the low band
//! of the range, which upstream keeps for static ones such as the DNS address.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use ipnet::IpNet;
use rand::Rng;
use serde_json::{Value, json};
use store::Store;

use api::FieldError;

use crate::error::ApiError;

const IP_PREFIX: &str = "/registry/ipaddresses/";
const PORT_PREFIX: &str = "/registry/k8rs/nodeports/";

pub struct ServiceAllocator {
    store: Arc<dyn Store>,
    cidr: IpNet,
    node_ports: RangeInclusive<u16>,
}

/// Keys created for one write, released if the write fails.
#[derive(Default, Debug)]
pub struct Allocation {
    keys: Vec<String>,
}

/// Why an allocation failed: a field error (422) or the store (5xx).
pub enum AllocError {
    Field(FieldError),
    Api(ApiError),
}

impl From<ApiError> for AllocError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

fn owner(svc: &Value) -> (String, String) {
    (
        svc.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        svc.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

fn wants_node_ports(svc: &Value) -> bool {
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => true,
        Some("LoadBalancer") => {
            svc.pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false)
        }
        _ => false,
    }
}

fn wants_cluster_ip(svc: &Value) -> bool {
    svc.pointer("/spec/type").and_then(Value::as_str) != Some("ExternalName")
        && svc.pointer("/spec/clusterIP").and_then(Value::as_str) != Some("None")
}

impl ServiceAllocator {
    pub fn new(store: Arc<dyn Store>, cidr: IpNet, node_ports: RangeInclusive<u16>) -> Self {
        Self {
            store,
            cidr,
            node_ports,
        }
    }

    fn range_text(&self) -> String {
        format!("{}-{}", self.node_ports.start(), self.node_ports.end())
    }

    /// Allocates the ClusterIP and node ports a new service asks for (or needs).
    pub async fn allocate(&self, svc: &mut Value, dry_run: bool) -> Result<Allocation, AllocError> {
        let mut alloc = Allocation::default();
        match self.allocate_into(svc, dry_run, &mut alloc).await {
            Ok(()) => Ok(alloc_or_empty(alloc, dry_run)),
            Err(e) => {
                self.release(alloc).await;
                Err(e)
            }
        }
    }

    async fn allocate_into(
        &self,
        svc: &mut Value,
        dry_run: bool,
        alloc: &mut Allocation,
    ) -> Result<(), AllocError> {
        let (ns, name) = owner(svc);
        if wants_cluster_ip(svc) {
            let requested = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            let ip = match requested {
                Some(text) => {
                    let ip: IpAddr = text.parse().map_err(|_| {
                        AllocError::Field(FieldError::invalid(
                            "spec.clusterIPs",
                            json!([text]),
                            "must be a valid IP address",
                        ))
                    })?;
                    if !self.cidr.contains(&ip) {
                        return Err(AllocError::Field(FieldError::invalid(
                            "spec.clusterIPs",
                            json!([text]),
                            format!(
                                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}",
                                self.cidr
                            ),
                        )));
                    }
                    if !dry_run
                        && !self
                            .claim(
                                &format!("{IP_PREFIX}{ip}"),
                                ip_object(ip, &ns, &name),
                                alloc,
                            )
                            .await?
                    {
                        return Err(AllocError::Field(FieldError::invalid(
                            "spec.clusterIPs",
                            json!([text]),
                            format!("failed to allocate IP {ip}: provided IP is already allocated"),
                        )));
                    }
                    ip
                }
                None => self.allocate_ip(&ns, &name, dry_run, alloc).await?,
            };
            svc["spec"]["clusterIP"] = json!(ip.to_string());
            svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
        }
        if wants_node_ports(svc) {
            let ports = svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, port) in ports.iter().enumerate() {
                let requested = port["nodePort"].as_i64().filter(|p| *p != 0);
                let chosen = match requested {
                    Some(p) => {
                        self.claim_port(p, &ns, &name, i, dry_run, alloc).await?;
                        p as u16
                    }
                    None => self.allocate_port(&ns, &name, dry_run, alloc).await?,
                };
                svc["spec"]["ports"][i]["nodePort"] = json!(chosen);
            }
        }
        Ok(())
    }

    /// Node ports for an update: new ports get one, dropped ones are released after
    /// the write succeeds (returned as `to_release`).
    pub async fn reallocate(
        &self,
        old: &Value,
        new: &mut Value,
        dry_run: bool,
    ) -> Result<(Allocation, Vec<String>), AllocError> {
        let mut alloc = Allocation::default();
        let (ns, name) = owner(new);
        let old_ports: Vec<i64> = node_ports_of(old);
        let mut kept = Vec::new();
        if wants_node_ports(new) {
            let ports = new
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, port) in ports.iter().enumerate() {
                let result = match port["nodePort"].as_i64().filter(|p| *p != 0) {
                    Some(p) if old_ports.contains(&p) => Ok(p as u16),
                    Some(p) => self
                        .claim_port(p, &ns, &name, i, dry_run, &mut alloc)
                        .await
                        .map(|()| p as u16),
                    None => self.allocate_port(&ns, &name, dry_run, &mut alloc).await,
                };
                match result {
                    Ok(p) => {
                        kept.push(i64::from(p));
                        new["spec"]["ports"][i]["nodePort"] = json!(p);
                    }
                    Err(e) => {
                        self.release(alloc).await;
                        return Err(e);
                    }
                }
            }
        } else if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports {
                if let Some(o) = p.as_object_mut() {
                    o.remove("nodePort");
                }
            }
        }
        let release = old_ports
            .iter()
            .filter(|p| !kept.contains(p))
            .map(|p| format!("{PORT_PREFIX}{p}"))
            .collect();
        Ok((alloc_or_empty(alloc, dry_run), release))
    }

    async fn claim_port(
        &self,
        p: i64,
        ns: &str,
        name: &str,
        i: usize,
        dry_run: bool,
        alloc: &mut Allocation,
    ) -> Result<(), AllocError> {
        let field = format!("spec.ports[{i}].nodePort");
        if p < i64::from(*self.node_ports.start()) || p > i64::from(*self.node_ports.end()) {
            return Err(AllocError::Field(FieldError::invalid(
                field,
                p,
                format!(
                    "provided port is not in the valid range. The range of valid ports is {}",
                    self.range_text()
                ),
            )));
        }
        if !dry_run
            && !self
                .claim(&format!("{PORT_PREFIX}{p}"), port_object(ns, name), alloc)
                .await?
        {
            return Err(AllocError::Field(FieldError::invalid(
                field,
                p,
                "provided port is already allocated",
            )));
        }
        Ok(())
    }

    async fn allocate_ip(
        &self,
        ns: &str,
        name: &str,
        dry_run: bool,
        alloc: &mut Allocation,
    ) -> Result<IpAddr, AllocError> {
        let hosts: Vec<IpAddr> = self.cidr.hosts().collect();
        // Dynamic allocations start above the static band (upstream: size/16, 16..=256).
        let band = (hosts.len() / 16)
            .clamp(16, 256)
            .min(hosts.len().saturating_sub(1));
        let dynamic = &hosts[band..];
        let start = rand::rng().random_range(0..dynamic.len().max(1));
        for ip in dynamic[start..]
            .iter()
            .chain(&dynamic[..start])
            .chain(&hosts[..band])
        {
            if dry_run
                || self
                    .claim(&format!("{IP_PREFIX}{ip}"), ip_object(*ip, ns, name), alloc)
                    .await?
            {
                return Ok(*ip);
            }
        }
        Err(AllocError::Api(ApiError::internal(format!(
            "failed to allocate a serviceIP: range {} is full",
            self.cidr
        ))))
    }

    async fn allocate_port(
        &self,
        ns: &str,
        name: &str,
        dry_run: bool,
        alloc: &mut Allocation,
    ) -> Result<u16, AllocError> {
        let (lo, hi) = (*self.node_ports.start(), *self.node_ports.end());
        let size = u32::from(hi - lo) + 1;
        let start = rand::rng().random_range(0..size);
        for off in 0..size {
            let port = lo + ((start + off) % size) as u16;
            if dry_run
                || self
                    .claim(
                        &format!("{PORT_PREFIX}{port}"),
                        port_object(ns, name),
                        alloc,
                    )
                    .await?
            {
                return Ok(port);
            }
        }
        Err(AllocError::Api(ApiError::internal(format!(
            "failed to allocate a nodePort: range {} is full",
            self.range_text()
        ))))
    }

    /// Creates the key; false when someone holds it already.
    async fn claim(
        &self,
        key: &str,
        value: Value,
        alloc: &mut Allocation,
    ) -> Result<bool, ApiError> {
        match self.store.create(key, Bytes::from(value.to_string())).await {
            Ok(_) => {
                alloc.keys.push(key.to_string());
                Ok(true)
            }
            Err(store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(ApiError::internal(e)),
        }
    }

    /// Undoes an allocation whose write failed.
    pub async fn release(&self, alloc: Allocation) {
        self.release_keys(&alloc.keys).await;
    }

    pub async fn release_keys(&self, keys: &[String]) {
        for k in keys {
            if let Err(e) = self.store.delete(k, None).await
                && !matches!(e, store::Error::NotFound { .. })
            {
                tracing::warn!(key = %k, error = %e, "failed to release a service allocation");
            }
        }
    }

    /// Everything a deleted service held.
    pub async fn release_service(&self, svc: &Value) {
        let mut keys: Vec<String> = node_ports_of(svc)
            .iter()
            .map(|p| format!("{PORT_PREFIX}{p}"))
            .collect();
        if wants_cluster_ip(svc)
            && let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str)
        {
            keys.push(format!("{IP_PREFIX}{ip}"));
        }
        self.release_keys(&keys).await;
    }
}

/// An update that leaves the ClusterIP or a node port out keeps the allocated one
/// (upstream's `patchAllocatedValues`), so a PUT of a manifest works as expected.
pub fn keep_allocated_values(old: &Value, new: &mut Value) {
    if wants_cluster_ip(old) && wants_cluster_ip(new) {
        for f in ["clusterIP", "clusterIPs"] {
            let missing = new["spec"]
                .get(f)
                .is_none_or(|v| v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty));
            if missing && let Some(v) = old["spec"].get(f) {
                new["spec"][f] = v.clone();
            }
        }
    }
    if wants_node_ports(old) && wants_node_ports(new) {
        let old_ports = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports {
                if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                    continue;
                }
                let same = old_ports
                    .iter()
                    .find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"]);
                if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                    p["nodePort"] = np.clone();
                }
            }
        }
    }
}

fn alloc_or_empty(alloc: Allocation, dry_run: bool) -> Allocation {
    if dry_run {
        Allocation::default()
    } else {
        alloc
    }
}

fn node_ports_of(svc: &Value) -> Vec<i64> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_i64())
        .filter(|p| *p != 0)
        .collect()
}

fn ip_object(ip: IpAddr, ns: &str, name: &str) -> Value {
    let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "labels": {"ipaddress.kubernetes.io/ip-family": family, "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"},
            "creationTimestamp": api::meta::now(),
        },
        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": ns, "name": name}},
    })
}

fn port_object(ns: &str, name: &str) -> Value {
    json!({"service": format!("{ns}/{name}"), "created": api::meta::now()})
}
