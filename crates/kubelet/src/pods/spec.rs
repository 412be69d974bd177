//! A pod's spec as CRI configs: the sandbox (hostname, DNS, ports, logs) and each
//! container (command, env, working dir, resources, log path).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use cri::v1::*;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret};
use kube::Api;

use super::security;
use crate::Config;

/// Upstream's CFS period; a CPU limit becomes a quota of it.
const CPU_PERIOD: i64 = 100_000;
/// The kernel's minimum cpu.shares, what a pod without CPU requests gets.
const MIN_SHARES: i64 = 2;

/// Labels the runtime keeps on sandboxes and containers, as upstream sets them, so a
/// restarted kubelet (or a human with crictl) can tell whose they are.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    HashMap::from([
        (
            "io.kubernetes.pod.name".into(),
            m.name.clone().unwrap_or_default(),
        ),
        (
            "io.kubernetes.pod.namespace".into(),
            m.namespace.clone().unwrap_or_default(),
        ),
        (
            "io.kubernetes.pod.uid".into(),
            m.uid.clone().unwrap_or_default(),
        ),
    ])
}

/// `<log root>/<ns>_<name>_<uid>`, the layout of /var/log/pods.
pub fn pod_log_dir(config: &Config, pod: &Pod) -> PathBuf {
    let m = &pod.metadata;
    config.pod_log_root().join(format!(
        "{}_{}_{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    ))
}

/// Each container in its own PID namespace, as upstream unless shareProcessNamespace
/// (CRI's zero value would put them all in the sandbox's).
fn namespaces(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.as_ref();
    let shared = spec.and_then(|s| s.share_process_namespace) == Some(true);
    let node = |on: Option<bool>| {
        if on == Some(true) {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        }
    };
    NamespaceOption {
        network: node(spec.and_then(|s| s.host_network)) as i32,
        ipc: node(spec.and_then(|s| s.host_ipc)) as i32,
        pid: if spec.and_then(|s| s.host_pid) == Some(true) {
            NamespaceMode::Node
        } else if shared {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Container
        } as i32,
        ..Default::default()
    }
}

fn dns_config(config: &Config, pod: &Pod) -> Option<DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host_network = spec.host_network == Some(true);
    let cluster_first =
        policy == "ClusterFirst" && !host_network || policy == "ClusterFirstWithHostNet";
    // "Default" (and ClusterFirst without a cluster DNS) inherit the node's resolv.conf,
    // which containerd copies when no DnsConfig is given.
    let dns = config.cluster_dns.filter(|_| cluster_first)?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = &config.cluster_domain;
    Some(DnsConfig {
        servers: vec![dns.to_string()],
        searches: vec![
            format!("{ns}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.clone(),
        ],
        options: vec!["ndots:5".into()],
    })
}

pub fn sandbox_config(config: &Config, pod: &Pod) -> PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let name = m.name.clone().unwrap_or_default();
    let ports = spec
        .map(|s| s.containers.iter().flat_map(|c| c.ports.iter().flatten()))
        .into_iter()
        .flatten()
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid: m.uid.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            attempt: 0,
        }),
        hostname: spec.and_then(|s| s.hostname.clone()).unwrap_or(name),
        log_directory: pod_log_dir(config, pod).display().to_string(),
        dns_config: dns_config(config, pod),
        port_mappings: ports,
        labels: pod_labels(pod),
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(security::sandbox(
                pod,
                namespaces(pod),
                &config.seccomp_root(),
            )),
            sysctls: security::sysctls(pod),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Why a container config could not be built (upstream: CreateContainerConfigError).
#[derive(Debug)]
pub struct ConfigError(pub String);

/// A fieldRef's value from the pod (the downward API's env subset).
fn field_ref(pod: &Pod, path: &str, pod_ip: &str, host_ip: &str) -> Result<String, ConfigError> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let from_map = |map: &Option<BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(
            map.as_ref()
                .and_then(|l| l.get(key))
                .cloned()
                .unwrap_or_default(),
        )
    };
    let value = match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.podIP" | "status.podIPs" => Some(pod_ip.to_string()),
        "status.hostIP" | "status.hostIPs" => Some(host_ip.to_string()),
        _ => from_map(&m.labels, "metadata.labels['")
            .or_else(|| from_map(&m.annotations, "metadata.annotations['")),
    };
    value.ok_or_else(|| ConfigError(format!("unsupported fieldRef path {path:?}")))
}

/// Expands `$(VAR)` from `env` as upstream does (`$$` escapes; unknown names stay).
pub fn expand(s: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some(v) = env.get(&inner[..end])
        {
            out.push_str(v);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

async fn env_value(
    client: &kube::Client,
    pod: &Pod,
    var: &EnvVar,
    ips: (&str, &str),
) -> Result<Option<String>, ConfigError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(var.value.clone().unwrap_or_default()));
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(f) = &from.field_ref {
        return field_ref(pod, &f.field_path, ips.0, ips.1).map(Some);
    }
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt(&r.name)
            .await;
        let cm = cm.map_err(|e| ConfigError(e.to_string()))?;
        return match cm.and_then(|c| c.data).and_then(|d| d.get(&r.key).cloned()) {
            Some(v) => Ok(Some(v)),
            None if optional => Ok(None),
            None => Err(ConfigError(format!(
                "couldn't find key {} in ConfigMap {ns}/{}",
                r.key, r.name
            ))),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        let s = Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt(&r.name)
            .await;
        let s = s.map_err(|e| ConfigError(e.to_string()))?;
        return match s.and_then(|c| c.data).and_then(|d| d.get(&r.key).cloned()) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
            None if optional => Ok(None),
            None => Err(ConfigError(format!(
                "couldn't find key {} in Secret {ns}/{}",
                r.key, r.name
            ))),
        };
    }
    Err(ConfigError(format!(
        "unsupported valueFrom in env {}",
        var.name
    )))
}

fn milli(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> Option<i64> {
    q.and_then(|q| scheduler::resources::parse_milli(&q.0))
        .map(|v| v as i64)
}

fn resources(c: &Container) -> LinuxContainerResources {
    let r = c.resources.as_ref();
    let limit = |k: &str| milli(r.and_then(|r| r.limits.as_ref()).and_then(|l| l.get(k)));
    let request = |k: &str| milli(r.and_then(|r| r.requests.as_ref()).and_then(|l| l.get(k)));
    let cpu_limit = limit("cpu");
    // Requests default to limits (API defaulting does this too).
    let cpu_request = request("cpu").or(cpu_limit);
    LinuxContainerResources {
        cpu_period: cpu_limit.map_or(0, |_| CPU_PERIOD),
        cpu_quota: cpu_limit.map_or(0, |m| (m * CPU_PERIOD / 1000).max(1000)),
        cpu_shares: cpu_request.map_or(MIN_SHARES, |m| (m * 1024 / 1000).max(MIN_SHARES)),
        memory_limit_in_bytes: limit("memory").map_or(0, |m| m / 1000),
        ..Default::default()
    }
}

pub struct ContainerInput<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub attempt: u32,
    pub image_ref: &'a str,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    /// The pod's volumes, set up already.
    pub volumes: &'a HashMap<String, crate::volumes::Mounted>,
    /// Where Localhost seccomp profiles live.
    pub seccomp_root: &'a std::path::Path,
}

pub async fn container_config(
    client: &kube::Client,
    input: ContainerInput<'_>,
) -> Result<ContainerConfig, ConfigError> {
    let c = input.container;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut known: HashMap<String, String> = HashMap::new();
    for var in c.env.iter().flatten() {
        let Some(mut value) =
            env_value(client, input.pod, var, (input.pod_ip, input.host_ip)).await?
        else {
            continue;
        };
        if var.value_from.is_none() {
            value = expand(&value, &known);
        }
        known.insert(var.name.clone(), value.clone());
        env.push((var.name.clone(), value));
    }
    let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|s| expand(s, &known)).collect()
    };
    let mounts = crate::volumes::container_mounts(c, input.volumes, |s| expand(s, &known))
        .map_err(ConfigError)?;
    let mut labels = pod_labels(input.pod);
    labels.insert("io.kubernetes.container.name".into(), c.name.clone());
    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: input.attempt,
        }),
        image: Some(cri::image_spec(input.image_ref)),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        mounts,
        envs: env
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
        labels,
        // Read back by a restarted kubelet adopting the container (upstream's key).
        annotations: HashMap::from([(
            super::adopt::RESTART_COUNT.to_string(),
            input.attempt.to_string(),
        )]),
        log_path: format!("{}/{}.log", c.name, input.attempt),
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        tty: c.tty == Some(true),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources(c)),
            security_context: Some(security::container(
                input.pod,
                c,
                namespaces(input.pod),
                input.seccomp_root,
            )),
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_upstream() {
        let env = HashMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "x-$(B)-$(A)-$");
    }
}
