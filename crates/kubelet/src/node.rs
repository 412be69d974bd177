//! The Node object: registration, status (conditions, capacity, nodeInfo) and the
//! Lease heartbeat in kube-node-lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::time::{now, now_micro};
use crate::{Config, Error, Result, Runtime, sysinfo};

/// Upstream's default hard eviction thresholds, which allocatable leaves out.
const EVICTION_MEMORY: u64 = 100 << 20;
const EVICTION_NODEFS_PERCENT: u64 = 10;
/// Status is re-posted this often even when nothing changed (the Lease is the
/// heartbeat; this keeps lastHeartbeatTime meaningful).
const STATUS_REPORT: Duration = Duration::from_secs(60);
const STATUS_CHECK: Duration = Duration::from_secs(10);

pub fn kubelet_version() -> String {
    format!("{}-k8rs", api::KUBERNETES_VERSION)
}

/// One condition's state: (status, reason, message).
type CondState = (&'static str, &'static str, String);

fn resources(config: &Config) -> (Value, Value) {
    let cpus = sysinfo::cpus();
    let memory = sysinfo::memory_bytes();
    let (disk, _) = sysinfo::filesystem(&config.data_dir);
    let capacity = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", memory / 1024),
        "ephemeral-storage": format!("{}Ki", disk / 1024),
        "pods": "110",
    });
    let allocatable = json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", memory.saturating_sub(EVICTION_MEMORY) / 1024),
        "ephemeral-storage": (disk / 100 * (100 - EVICTION_NODEFS_PERCENT)).to_string(),
        "pods": "110",
    });
    (capacity, allocatable)
}

fn node_info(runtime_version: &str) -> Value {
    json!({
        "machineID": sysinfo::machine_id(),
        "systemUUID": sysinfo::system_uuid(),
        "bootID": sysinfo::boot_id(),
        "kernelVersion": sysinfo::kernel_version(),
        "osImage": sysinfo::os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": kubelet_version(),
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": sysinfo::arch(),
    })
}

/// The pressure conditions, from what the machine has left.
fn pressure(config: &Config) -> [(&'static str, CondState); 3] {
    let memory = if sysinfo::memory_available_bytes() < EVICTION_MEMORY {
        (
            "True",
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
        )
    } else {
        (
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        )
    };
    let (size, free) = sysinfo::filesystem(&config.data_dir);
    let disk = if size > 0 && free * 100 < size * EVICTION_NODEFS_PERCENT {
        (
            "True",
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
        )
    } else {
        (
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        )
    };
    let own = |(s, r, m): (&'static str, &'static str, &str)| (s, r, m.to_string());
    [
        ("MemoryPressure", own(memory)),
        ("DiskPressure", own(disk)),
        (
            "PIDPressure",
            own((
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            )),
        ),
    ]
}

/// Ready from the runtime's own conditions, with upstream's messages.
async fn ready(runtime: Option<&Runtime>) -> (CondState, String) {
    let not_ready = |m: String| ("False", "KubeletNotReady", m);
    let Some(rt) = runtime else {
        let m = "container runtime status check may not have completed yet".to_string();
        return (not_ready(m), String::new());
    };
    let version = match rt.runtime.version().await {
        Ok(v) => format!("{}://{}", v.runtime_name, v.runtime_version),
        Err(e) => {
            return (
                not_ready(format!("container runtime is down: {e}")),
                String::new(),
            );
        }
    };
    let conditions = match rt.runtime.status().await {
        Ok(s) => s.status.map(|s| s.conditions).unwrap_or_default(),
        Err(e) => {
            return (
                not_ready(format!("container runtime is down: {e}")),
                version,
            );
        }
    };
    for (kind, prefix) in [
        ("RuntimeReady", "container runtime not ready"),
        ("NetworkReady", "container runtime network not ready"),
    ] {
        match conditions.iter().find(|c| c.r#type == kind) {
            Some(c) if c.status => {}
            Some(c) => {
                let m = format!(
                    "{prefix}: {kind}=false reason:{} message:{}",
                    c.reason, c.message
                );
                return (not_ready(m), version);
            }
            None => return (not_ready(format!("{prefix}: {kind} missing")), version),
        }
    }
    (
        (
            "True",
            "KubeletReady",
            "kubelet is posting ready status".into(),
        ),
        version,
    )
}

/// Builds the conditions list, keeping lastTransitionTime while a status holds.
fn conditions(
    states: &[(&'static str, CondState)],
    transitions: &mut HashMap<&'static str, (&'static str, String)>,
) -> Value {
    let at = now();
    let list: Vec<Value> = states
        .iter()
        .map(|(kind, (status, reason, message))| {
            let entry = transitions.entry(kind).or_insert((status, at.clone()));
            if entry.0 != *status {
                *entry = (status, at.clone());
            }
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": at, "lastTransitionTime": entry.1})
        })
        .collect();
    Value::Array(list)
}

fn labels(config: &Config) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": config.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": sysinfo::arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": sysinfo::arch(),
    });
    for (k, v) in &config.node_labels {
        labels[k] = json!(v);
    }
    labels
}

fn status(config: &Config, conditions: Value, runtime_version: &str) -> Value {
    let (capacity, allocatable) = resources(config);
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": config.node_ip.to_string()},
            {"type": "Hostname", "address": config.node_name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.kubelet_port}},
        "nodeInfo": node_info(runtime_version),
    })
}

/// Creates the Node, or takes over one left from an earlier run (labels and status).
pub async fn register(client: &kube::Client, config: &Config) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut states = pressure(config).to_vec();
    states.push(("Ready", ready(None).await.0));
    let status = status(config, conditions(&states, &mut HashMap::new()), "");
    let obj = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": config.node_name, "labels": labels(config)},
        "spec": {},
        "status": status,
    });
    let node: Node = serde_json::from_value(obj).expect("a valid Node");
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let pp = PatchParams::default();
            let meta = json!({"metadata": {"labels": labels(config)}});
            nodes
                .patch(&config.node_name, &pp, &Patch::Merge(&meta))
                .await?;
            let st = json!({"status": status});
            nodes
                .patch_status(&config.node_name, &pp, &Patch::Merge(&st))
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(node = %config.node_name, "node registered");
    Ok(())
}

/// Polls the Node until node IPAM set spec.podCIDR.
pub async fn wait_pod_cidr(
    client: &kube::Client,
    node: &str,
    timeout: Duration,
) -> Result<ipnet::IpNet> {
    let nodes: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    loop {
        let cidr = nodes
            .get(node)
            .await?
            .spec
            .and_then(|s| s.pod_cidr)
            .filter(|c| !c.is_empty());
        if let Some(cidr) = cidr {
            return cidr.parse().map_err(|_| Error::BadPodCidr {
                node: node.into(),
                cidr,
            });
        }
        if started.elapsed() > timeout {
            return Err(Error::NoPodCidr {
                node: node.into(),
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Re-posts the node status every STATUS_CHECK when a condition changed, and every
/// STATUS_REPORT regardless.
pub async fn status_forever(client: kube::Client, config: Arc<Config>, runtime: Runtime) {
    let nodes: Api<Node> = Api::all(client);
    let mut transitions = HashMap::new();
    let mut last: Option<(Vec<&'static str>, Instant)> = None;
    loop {
        let (ready, version) = ready(Some(&runtime)).await;
        let mut states = pressure(&config).to_vec();
        states.push(("Ready", ready));
        let summary: Vec<&'static str> = states.iter().map(|(_, (s, _, _))| *s).collect();
        let due = last
            .as_ref()
            .is_none_or(|(prev, at)| *prev != summary || at.elapsed() >= STATUS_REPORT);
        if due {
            let conditions = conditions(&states, &mut transitions);
            let patch = json!({"status": status(&config, conditions, &version)});
            let pp = PatchParams::default();
            match nodes
                .patch_status(&config.node_name, &pp, &Patch::Merge(&patch))
                .await
            {
                Ok(_) => last = Some((summary, Instant::now())),
                Err(e) => tracing::warn!(error = %e, "node status update failed"),
            }
        }
        tokio::time::sleep(STATUS_CHECK).await;
    }
}

/// Renews the node's Lease every `lease_interval`, creating it (owned by the Node, so
/// it goes with it) when missing.
pub async fn renew_lease_forever(client: kube::Client, config: Arc<Config>) {
    loop {
        if let Err(e) = renew_lease(&client, &config).await {
            tracing::warn!(error = %e, "node lease renewal failed");
        }
        tokio::time::sleep(config.lease_interval).await;
    }
}

async fn renew_lease(client: &kube::Client, config: &Config) -> Result<()> {
    let name = &config.node_name;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let patch = json!({"spec": {"renewTime": now_micro(), "holderIdentity": name}});
    match leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let node = Api::<Node>::all(client.clone()).get(name).await?;
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                 "uid": node.metadata.uid}],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
    }))
    .expect("a valid Lease");
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
