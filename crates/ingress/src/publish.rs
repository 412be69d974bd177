//! Where the controller listens, in the API: the `k8rs-ingress` Service in kube-system
//! (no selector; pods can reach the controller through its ClusterIP), and one
//! EndpointSlice per node naming the node's address and the ports it bound. The
//! control plane reads the slices to fill in Ingresses' `status.loadBalancer`. Each
//! slice is owned by its Node, so it goes when the Node is deleted.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::backends::SERVICE_NAME_LABEL;

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "k8rs-ingress";
/// The `endpointslice.kubernetes.io/managed-by` value of our slices.
pub const MANAGED_BY: &str = "k8rs-ingress";
const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the node {0} is not registered yet")]
    NoNode(String),
    #[error("cannot write the k8rs-ingress Service or EndpointSlice: {0}")]
    Api(#[from] kube::Error),
}

/// This node's listeners.
#[derive(Clone, Debug)]
pub struct NodeTarget {
    pub node_name: String,
    pub node_ip: IpAddr,
    pub http: Option<u16>,
    pub https: Option<u16>,
}

pub fn service() -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": SERVICE, "app.kubernetes.io/component": "controller"},
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"},
            ],
        },
    }))
    .expect("a valid Service")
}

/// Creates the Service unless it exists.
pub async fn ensure_service(client: &kube::Client) -> Result<(), Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    if services.get_opt(SERVICE).await?.is_none() {
        match services.create(&PostParams::default(), &service()).await {
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            r => {
                r?;
            }
        }
    }
    Ok(())
}

pub fn slice_name(node: &str) -> String {
    let mut name = format!("{SERVICE}-{node}");
    name.truncate(253);
    name
}

/// This node's slice; `node_uid` makes the Node its owner.
pub fn slice(t: &NodeTarget, node_uid: &str) -> EndpointSlice {
    let family = if t.node_ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let ports: Vec<_> = [("http", t.http), ("https", t.https)]
        .into_iter()
        .filter_map(|(name, port)| Some(json!({"name": name, "port": port?, "protocol": "TCP"})))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(&t.node_name),
            "namespace": NAMESPACE,
            "labels": {SERVICE_NAME_LABEL: SERVICE, MANAGED_BY_LABEL: MANAGED_BY},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": t.node_name, "uid": node_uid,
            }],
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

/// Creates this node's slice or brings it back to what it should be. Needs the Node.
pub async fn ensure_slice(client: &kube::Client, t: &NodeTarget) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.get_opt(&t.node_name).await?;
    let uid = node
        .and_then(|n| n.metadata.uid)
        .ok_or_else(|| Error::NoNode(t.node_name.clone()))?;
    let want = slice(t, &uid);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let name = slice_name(&t.node_name);
    match slices.get_opt(&name).await? {
        None => {
            slices.create(&PostParams::default(), &want).await?;
        }
        Some(have)
            if have.endpoints != want.endpoints
                || have.ports != want.ports
                || have.metadata.owner_references != want.metadata.owner_references =>
        {
            let patch = json!({
                "metadata": {"labels": want.metadata.labels, "ownerReferences": want.metadata.owner_references},
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

/// Removes this node's slice (the controller is off here), so the status stops
/// naming this node.
pub async fn remove_slice(client: &kube::Client, node_name: &str) -> Result<(), Error> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    match slices
        .delete(&slice_name(node_name), &Default::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
