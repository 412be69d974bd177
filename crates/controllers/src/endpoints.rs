//! Endpoints and EndpointSlice controllers: for every Service with a selector, the
//! pods it selects become its endpoints (ready and not-ready addresses, target ports
//! resolved by number or by container port name), written both as the core/v1
//! Endpoints object and as discovery.k8s.io/v1 EndpointSlices.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::{Error, Result};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const MAX_ENDPOINTS_PER_SLICE: usize = 100;

struct Ctx {
    client: kube::Client,
}

/// One pod as an endpoint.
struct Endpoint {
    ip: String,
    node: Option<String>,
    pod: Pod,
    ready: bool,
    terminating: bool,
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn selects(svc: &Service, pod: &Pod) -> bool {
    let Some(sel) = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
    else {
        return false;
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    pod.metadata.namespace == svc.metadata.namespace
        && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The container port a service port's targetPort means in this pod.
fn resolve_port(sp: &ServicePort, pod: &Pod) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find_map(|p| {
                (p.name.as_deref() == Some(name.as_str())
                    && p.protocol.as_deref().unwrap_or("TCP")
                        == sp.protocol.as_deref().unwrap_or("TCP"))
                .then_some(p.container_port)
            }),
    }
}

fn endpoints_of(svc: &Service, pods: &[Pod]) -> Vec<Endpoint> {
    let publish_not_ready = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut out: Vec<Endpoint> = pods
        .iter()
        .filter(|p| selects(svc, p))
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| {
            let ip = p
                .status
                .as_ref()?
                .pod_ip
                .clone()
                .filter(|ip| !ip.is_empty())?;
            Some(Endpoint {
                ip,
                node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                ready: publish_not_ready || pod_ready(p),
                terminating: p.metadata.deletion_timestamp.is_some(),
                pod: p.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.ip.cmp(&b.ip));
    out
}

fn target_ref(p: &Pod) -> Value {
    json!({"kind": "Pod", "namespace": p.metadata.namespace, "name": p.metadata.name, "uid": p.metadata.uid})
}

/// One Endpoints subset being built.
#[derive(Default)]
struct Subset {
    ready: Vec<Value>,
    not_ready: Vec<Value>,
    ports: Vec<Value>,
}

/// The core/v1 Endpoints subsets: pods grouped by their resolved port set.
fn subsets(svc: &Service, eps: &[Endpoint]) -> Vec<Value> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut groups: BTreeMap<String, Subset> = BTreeMap::new();
    for ep in eps {
        if ep.terminating {
            continue;
        }
        let resolved: Vec<Value> = ports
            .iter()
            .filter_map(|sp| {
                let port = resolve_port(sp, &ep.pod)?;
                let mut v = json!({"port": port, "protocol": sp.protocol.clone().unwrap_or_else(|| "TCP".into())});
                if let Some(n) = sp.name.as_ref().filter(|n| !n.is_empty()) {
                    v["name"] = json!(n);
                }
                Some(v)
            })
            .collect();
        if resolved.is_empty() {
            continue;
        }
        let key = serde_json::to_string(&resolved).unwrap_or_default();
        let entry = groups.entry(key).or_insert_with(|| Subset {
            ports: resolved,
            ..Default::default()
        });
        let mut addr = json!({"ip": ep.ip, "targetRef": target_ref(&ep.pod)});
        if let Some(n) = &ep.node {
            addr["nodeName"] = json!(n);
        }
        if ep.ready {
            entry.ready.push(addr)
        } else {
            entry.not_ready.push(addr)
        }
    }
    groups
        .into_values()
        .map(|g| {
            let mut s = json!({"ports": g.ports});
            if !g.ready.is_empty() {
                s["addresses"] = json!(g.ready);
            }
            if !g.not_ready.is_empty() {
                s["notReadyAddresses"] = json!(g.not_ready);
            }
            s
        })
        .collect()
}

/// EndpointSlice ports and endpoints (each slice holds up to 100 endpoints).
fn slices(svc: &Service, eps: &[Endpoint]) -> Vec<(Vec<Value>, Vec<Value>)> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut by_ports: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for ep in eps {
        let resolved: Vec<Value> = ports
            .iter()
            .filter_map(|sp| {
                let port = resolve_port(sp, &ep.pod)?;
                Some(json!({"name": sp.name.clone().unwrap_or_default(), "port": port, "protocol": sp.protocol.clone().unwrap_or_else(|| "TCP".into())}))
            })
            .collect();
        let key = serde_json::to_string(&resolved).unwrap_or_default();
        let entry = by_ports
            .entry(key)
            .or_insert_with(|| (resolved, Vec::new()));
        let serving = pod_ready(&ep.pod);
        let mut e = json!({
            "addresses": [ep.ip],
            "conditions": {"ready": ep.ready && !ep.terminating, "serving": serving, "terminating": ep.terminating},
            "targetRef": target_ref(&ep.pod),
        });
        if let Some(n) = &ep.node {
            e["nodeName"] = json!(n);
        }
        entry.1.push(e);
    }
    let mut out = Vec::new();
    for (ports, endpoints) in by_ports.into_values() {
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push((ports.clone(), chunk.to_vec()));
        }
    }
    if out.is_empty() {
        out.push((Vec::new(), Vec::new()));
    }
    out
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let has_selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty());
    if svc.metadata.deletion_timestamp.is_some()
        || !has_selector
        || name == "kubernetes" && ns == "default"
    {
        return Ok(Action::await_change());
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let label_selector = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let listed = pods
        .list(&ListParams::default().labels(&label_selector))
        .await?
        .items;
    let eps = endpoints_of(&svc, &listed);
    write_endpoints(&ctx.client, &svc, &eps).await?;
    write_slices(&ctx.client, &svc, &eps).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn owner(svc: &Service) -> Value {
    json!([{"apiVersion": "v1", "kind": "Service", "name": svc.metadata.name, "uid": svc.metadata.uid,
            "controller": true, "blockOwnerDeletion": true}])
}

async fn write_endpoints(client: &kube::Client, svc: &Service, eps: &[Endpoint]) -> Result<()> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let api: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client.clone(), &ns);
    let subsets = subsets(svc, eps);
    let current = api.get_opt(&name).await?;
    let current_subsets = current
        .as_ref()
        .map(|c| serde_json::to_value(&c.subsets).unwrap_or(Value::Null));
    let wanted = if subsets.is_empty() {
        Value::Null
    } else {
        json!(subsets)
    };
    if current_subsets.as_ref() == Some(&wanted) {
        return Ok(());
    }
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        "endpoints.kubernetes.io/managed-by".into(),
        "endpoint-controller".into(),
    );
    let obj = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "subsets": wanted,
    });
    match current {
        None => {
            let ep = serde_json::from_value(obj).map_err(|e| Error::Other(e.to_string()))?;
            match api.create(&PostParams::default(), &ep).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Some(_) => {
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&json!({"metadata": {"labels": obj["metadata"]["labels"]}, "subsets": obj["subsets"]})))
                .await?;
            Ok(())
        }
    }
}

async fn write_slices(client: &kube::Client, svc: &Service, eps: &[Endpoint]) -> Result<()> {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let selector = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}");
    let mut existing = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let wanted = slices(svc, eps);
    for (i, (ports, endpoints)) in wanted.iter().enumerate() {
        let body = json!({"addressType": "IPv4", "ports": ports, "endpoints": endpoints});
        match existing.get(i) {
            Some(cur) => {
                let cur_v = json!({"addressType": cur.address_type, "ports": cur.ports.clone().unwrap_or_default(), "endpoints": cur.endpoints});
                if cur_v != body {
                    let n = cur.metadata.name.clone().unwrap_or_default();
                    api.patch(
                        &n,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"ports": ports, "endpoints": endpoints})),
                    )
                    .await?;
                }
            }
            None => {
                let mut labels = svc.metadata.labels.clone().unwrap_or_default();
                labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
                labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
                let obj = json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": labels, "ownerReferences": owner(svc)},
                    "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
                });
                let slice: EndpointSlice =
                    serde_json::from_value(obj).map_err(|e| Error::Other(e.to_string()))?;
                api.create(&PostParams::default(), &slice).await?;
            }
        }
    }
    for extra in existing.iter().skip(wanted.len()) {
        let n = extra.metadata.name.clone().unwrap_or_default();
        let _ = api.delete(&n, &DeleteParams::default()).await;
    }
    Ok(())
}

fn error_policy(_svc: Arc<Service>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "endpoints controller retry");
    Action::requeue(Duration::from_secs(1))
}

/// The services that select `pod`, from the controller's own service cache.
fn services_for(store: &Store<Service>, pod: &Pod) -> Vec<ObjectRef<Service>> {
    store
        .state()
        .iter()
        .filter(|s| selects(s, pod))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Runs until dropped.
pub async fn run(client: kube::Client) {
    let services: Api<Service> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let controller = Controller::new(services, watcher::Config::default());
    let store = controller.store();
    controller
        .watches(pods, watcher::Config::default(), move |pod| {
            services_for(&store, &pod)
        })
        .run(reconcile, error_policy, Arc::new(Ctx { client }))
        .for_each(|_| async {})
        .await;
}
