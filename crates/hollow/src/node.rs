//! Node registration, Lease renewal and status reports of the hollow nodes.

use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{Error, Options};

pub fn node_name(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index}")
}

/// A made-up but stable address per node, outside the cluster's networks.
pub(crate) fn node_ip(index: usize) -> String {
    format!(
        "10.{}.{}.{}",
        200 + (index / 65536) % 50,
        (index / 256) % 256,
        index % 256
    )
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn conditions(at: &str) -> Value {
    let c = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": at, "lastTransitionTime": at})
    };
    json!([
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        c(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

fn node_object(opts: &Options, index: usize) -> Value {
    let name = node_name(&opts.prefix, index);
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "k8rs.io/hollow": "true",
    });
    for (k, v) in &opts.labels {
        labels[k] = json!(v);
    }
    let resources = json!({"cpu": opts.cpu, "memory": opts.memory, "pods": opts.pods, "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions(&now()),
            "addresses": [{"type": "InternalIP", "address": node_ip(index)}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("hollow-{index}"),
                "systemUUID": format!("hollow-{index}"),
                "bootID": format!("hollow-{index}"),
                "kernelVersion": "hollow",
                "osImage": "k8rs hollow node",
                "containerRuntimeVersion": "hollow://1.0",
                "kubeletVersion": "v1.33.5",
                "kubeProxyVersion": "v1.33.5",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

/// Creates every node (or refreshes one left from an earlier run) and its Lease.
pub(crate) async fn register_all(
    client: &kube::Client,
    opts: &Arc<Options>,
    limiter: &Arc<Semaphore>,
) -> Result<(), Error> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..opts.count {
        let (client, opts, limiter) = (client.clone(), opts.clone(), limiter.clone());
        tasks.spawn(async move {
            let _permit = limiter.acquire().await.expect("semaphore open");
            register(&client, &opts, index).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("registration task")?;
    }
    Ok(())
}

async fn register(client: &kube::Client, opts: &Options, index: usize) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let obj = node_object(opts, index);
    let node: Node = serde_json::from_value(obj.clone()).expect("a valid node");
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let name = node_name(&opts.prefix, index);
            nodes
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": obj["status"]})),
                )
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    renew_lease(client, opts, index).await
}

async fn renew_lease(client: &kube::Client, opts: &Options, index: usize) -> Result<(), Error> {
    let name = node_name(&opts.prefix, index);
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let micro = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let patch = json!({"spec": {"renewTime": micro}});
    match leases
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro},
            }))
            .expect("a valid lease");
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Renews every node's Lease each interval, spread over the interval, and reports
/// node status less often; runs until dropped.
pub(crate) async fn heartbeat_all(
    client: kube::Client,
    opts: Arc<Options>,
    limiter: Arc<Semaphore>,
) -> Result<(), Error> {
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..opts.count {
        let (client, opts, limiter) = (client.clone(), opts.clone(), limiter.clone());
        tasks.spawn(async move {
            let spread = opts
                .lease_interval
                .mul_f64(index as f64 / opts.count.max(1) as f64);
            tokio::time::sleep(spread).await;
            let mut last_status = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(opts.lease_interval).await;
                let _permit = limiter.acquire().await.expect("semaphore open");
                if let Err(e) = renew_lease(&client, &opts, index).await {
                    tracing::debug!(index, error = %e, "lease renewal failed");
                }
                if last_status.elapsed() >= opts.status_interval {
                    last_status = tokio::time::Instant::now();
                    let nodes: Api<Node> = Api::all(client.clone());
                    let patch = json!({"status": {"conditions": conditions(&now())}});
                    let name = node_name(&opts.prefix, index);
                    if let Err(e) = nodes
                        .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        tracing::debug!(index, error = %e, "node status update failed");
                    }
                }
            }
        });
    }
    // The tasks only end by panicking.
    while let Some(Err(e)) = tasks.join_next().await {
        tracing::warn!(error = %e, "a hollow node heartbeat task ended");
    }
    Ok(())
}
