//! The objects a new cluster has, as upstream's bootstrap controllers create them: the
//! system namespaces and the `kubernetes` service with its endpoints.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::error::Result;
use crate::registry::{Context, Registry};

/// What bootstrap needs to know about the cluster.
pub struct BootstrapConfig {
    /// The first address of the service CIDR (10.43.0.1), the `kubernetes` service IP.
    pub kubernetes_service_ip: IpAddr,
    /// The API server's address and port as endpoints of the `kubernetes` service.
    pub advertise_address: IpAddr,
    pub secure_port: u16,
}

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what is missing; existing objects are left as they are, except the
/// `kubernetes` endpoints, which follow the advertised address.
pub async fn run(registry: &Registry, cfg: &BootstrapConfig) -> Result<()> {
    let ctx = Context::system();
    let snap = registry.resources.snapshot();
    let ns_info = snap
        .get("", "v1", "namespaces")
        .expect("namespaces are built in");
    for ns in SYSTEM_NAMESPACES {
        if registry.try_get(&ns_info, None, ns).await?.is_none() {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            ignore_exists(registry.create(&ns_info, None, obj, &ctx).await)?;
        }
    }

    let svc_info = snap
        .get("", "v1", "services")
        .expect("services are built in");
    if registry
        .try_get(&svc_info, Some("default"), "kubernetes")
        .await?
        .is_none()
    {
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": cfg.kubernetes_service_ip.to_string(),
                "clusterIPs": [cfg.kubernetes_service_ip.to_string()],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": cfg.secure_port}],
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "internalTrafficPolicy": "Cluster",
            },
        });
        ignore_exists(registry.create(&svc_info, Some("default"), svc, &ctx).await)?;
    }

    if let Some(pc_info) = snap.get("scheduling.k8s.io", "v1", "priorityclasses") {
        for (name, value) in crate::admission::SYSTEM_CLASSES {
            if registry.try_get(&pc_info, None, name).await?.is_none() {
                let description = if *name == "system-node-critical" {
                    "Used for system critical pods that must not be moved from their current node."
                } else {
                    "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."
                };
                let pc = json!({
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                    "preemptionPolicy": "PreemptLowerPriority",
                    "description": description,
                });
                ignore_exists(registry.create(&pc_info, None, pc, &ctx).await)?;
            }
        }
    }

    let ep_info = snap
        .get("", "v1", "endpoints")
        .expect("endpoints are built in");
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{
            "addresses": [{"ip": cfg.advertise_address.to_string()}],
            "ports": [{"name": "https", "port": cfg.secure_port, "protocol": "TCP"}],
        }],
    });
    upsert(
        registry,
        &ep_info,
        Some("default"),
        "kubernetes",
        endpoints,
        &ctx,
    )
    .await?;

    if let Some(slice_info) = snap.get("discovery.k8s.io", "v1", "endpointslices") {
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [cfg.advertise_address.to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": cfg.secure_port, "protocol": "TCP"}],
        });
        upsert(
            registry,
            &slice_info,
            Some("default"),
            "kubernetes",
            slice,
            &ctx,
        )
        .await?;
    }
    Ok(())
}

fn ignore_exists(r: Result<Value>) -> Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the object, or replaces its content when it differs.
async fn upsert(
    registry: &Registry,
    info: &api::ResourceInfo,
    ns: Option<&str>,
    name: &str,
    desired: Value,
    ctx: &Context,
) -> Result<()> {
    match registry.try_get(info, ns, name).await? {
        None => ignore_exists(registry.create(info, ns, desired, ctx).await),
        Some(_) => registry
            .guaranteed_update(
                info,
                ns,
                name,
                crate::registry::UpdateMode::Main,
                ctx,
                |current| {
                    let mut next = current.clone();
                    for (k, v) in desired.as_object().into_iter().flatten() {
                        if k != "metadata" {
                            next[k] = v.clone();
                        }
                    }
                    Ok(next)
                },
            )
            .await
            .map(|_| ()),
    }
}
