//! The API side of the built-in DNS: the `kube-dns` Service in kube-system (upstream's
//! name and labels, so `kubectl cluster-info` lists CoreDNS) and, since no pod serves
//! it, an EndpointSlice of our own pointing at this node's DNS server. The Service has
//! no selector, so the EndpointSlice controller leaves the slice alone.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "kube-dns";
/// The `endpointslice.kubernetes.io/managed-by` value of our slices.
pub const MANAGED_BY: &str = "k8rs-dns";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the kube-dns Service or its EndpointSlice could not be written: {0}")]
    Api(#[from] kube::Error),
}

/// Where this node's DNS server is.
#[derive(Clone, Debug)]
pub struct Target {
    /// The Service's ClusterIP (`--cluster-dns`).
    pub cluster_ip: IpAddr,
    pub node_name: String,
    pub node_ip: IpAddr,
    /// The server's port, UDP and TCP.
    pub port: u16,
    /// Where its `/metrics` are served on `node_ip`, if anywhere.
    pub metrics_port: Option<u16>,
}

/// The Service as we want it.
pub fn service(t: &Target) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {
                "prometheus.io/port": "9153",
                "prometheus.io/scrape": "true",
            },
        },
        "spec": {
            "clusterIP": t.cluster_ip.to_string(),
            "clusterIPs": [t.cluster_ip.to_string()],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
        },
    }))
    .expect("a valid Service")
}

/// This node's EndpointSlice of the Service.
pub fn slice(t: &Target) -> EndpointSlice {
    let family = if t.node_ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let mut ports = vec![
        json!({"name": "dns", "port": t.port, "protocol": "UDP"}),
        json!({"name": "dns-tcp", "port": t.port, "protocol": "TCP"}),
    ];
    if let Some(port) = t.metrics_port {
        ports.push(json!({"name": "metrics", "port": port, "protocol": "TCP"}));
    }
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(&t.node_name),
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": family,
        "ports": ports,
        "endpoints": [{
            "addresses": [t.node_ip.to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": t.node_name,
        }],
    }))
    .expect("a valid EndpointSlice")
}

fn slice_name(node: &str) -> String {
    let mut name = format!("{SERVICE}-{node}");
    name.truncate(253);
    name
}

/// Creates the Service and this node's slice, or brings them back to what they should
/// be. A Service with another ClusterIP is left alone (ClusterIPs cannot change).
pub async fn ensure(client: &kube::Client, t: &Target) -> Result<(), Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let want = service(t);
    match services.get_opt(SERVICE).await? {
        None => {
            services.create(&PostParams::default(), &want).await?;
        }
        Some(have) => {
            let ip = have.spec.as_ref().and_then(|s| s.cluster_ip.clone());
            if ip.as_deref() != Some(&t.cluster_ip.to_string()) {
                tracing::warn!(
                    have = ?ip, want = %t.cluster_ip,
                    "the kube-dns Service has another ClusterIP; pods' resolv.conf points elsewhere"
                );
            }
            let patch = json!({
                "metadata": {"labels": want.metadata.labels},
                "spec": {"ports": want.spec.as_ref().and_then(|s| s.ports.clone())},
            });
            services
                .patch(SERVICE, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let want = slice(t);
    let name = slice_name(&t.node_name);
    match slices.get_opt(&name).await? {
        None => {
            slices.create(&PostParams::default(), &want).await?;
        }
        Some(have) if have.endpoints != want.endpoints || have.ports != want.ports => {
            let patch = json!({
                "metadata": {"labels": want.metadata.labels},
                "addressType": want.address_type,
                "ports": want.ports,
                "endpoints": want.endpoints,
            });
            slices
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        Some(_) => {}
    }
    Ok(())
}
