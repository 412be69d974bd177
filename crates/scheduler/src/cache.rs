//! What the scheduler knows about the cluster: every node with the pods bound to it
//! and the resources, ports and labels they use. Pods being bound are "assumed" onto
//! their node at once, so the next decision already counts them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::resources::{self, Resources};

/// The parts of a pod that scheduling decisions look at, computed once.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: String,
    pub uid: String,
    pub requests: Resources,
    /// (protocol, hostIP, hostPort) of containers asking for host ports.
    pub host_ports: Vec<(String, String, i32)>,
    pub priority: i32,
    /// CPU (millicores) and memory (bytes) requests, the hot path of fit checks.
    pub cpu: i64,
    pub memory: i64,
    /// Whether it requests anything besides cpu, memory and pods.
    pub other_requests: bool,
    /// Whether the pod has required pod anti-affinity (which other pods must respect).
    pub has_required_anti_affinity: bool,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let requests = resources::pod_requests(&spec);
        let host_ports = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| {
                let hp = p.host_port.filter(|hp| *hp > 0)?;
                Some((
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    p.host_ip
                        .clone()
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    hp,
                ))
            })
            .collect();
        let other_requests = requests
            .iter()
            .any(|(k, v)| *v > 0 && !matches!(k.as_str(), "cpu" | "memory" | "pods"));
        Self {
            cpu: requests.get("cpu").copied().unwrap_or(0),
            memory: requests.get("memory").copied().unwrap_or(0),
            other_requests,
            key: pod_key(&pod),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            requests,
            host_ports,
            priority: spec.priority.unwrap_or(0),
            has_required_anti_affinity: spec
                .affinity
                .as_ref()
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|p| {
                    p.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .is_some_and(|t| !t.is_empty()),
            pod,
        }
    }

    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.pod.metadata.labels.as_ref()
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }
}

pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// One node and what is placed on it.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub name: String,
    pub allocatable: Resources,
    pub requested: Resources,
    /// Requests with upstream's non-zero defaults, for scoring.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    /// Allocatable pods, CPU and memory, and what bound pods request of the last two.
    pub alloc_pods: i64,
    pub alloc_cpu: i64,
    pub alloc_memory: i64,
    pub req_cpu: i64,
    pub req_memory: i64,
    pub pods: Vec<PodInfo>,
    pub used_ports: HashSet<(String, String, i32)>,
    /// Changes whenever the node or its pods change.
    pub generation: u64,
}

impl NodeInfo {
    fn new(node: Arc<Node>) -> Self {
        let allocatable: Resources = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.clone(), resources::amount(k, v)))
                    .collect()
            })
            .unwrap_or_default();
        let alloc = |k: &str, default: i64| allocatable.get(k).copied().unwrap_or(default);
        let (alloc_pods, alloc_cpu, alloc_memory) =
            (alloc("pods", 110), alloc("cpu", 0), alloc("memory", 0));
        Self {
            alloc_pods,
            alloc_cpu,
            alloc_memory,
            req_cpu: 0,
            req_memory: 0,
            name: node.metadata.name.clone().unwrap_or_default(),
            node,
            allocatable,
            requested: Resources::new(),
            non_zero_cpu: 0,
            non_zero_memory: 0,
            pods: Vec::new(),
            used_ports: HashSet::new(),
            generation: 0,
        }
    }

    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.node.metadata.labels.as_ref()
    }

    pub(crate) fn add_pod(&mut self, p: PodInfo) {
        for (k, v) in &p.requests {
            *self.requested.entry(k.clone()).or_default() += v;
        }
        self.req_cpu += p.cpu;
        self.req_memory += p.memory;
        self.non_zero_cpu += p
            .requests
            .get("cpu")
            .copied()
            .filter(|v| *v > 0)
            .unwrap_or(resources::DEFAULT_MILLI_CPU_REQUEST);
        self.non_zero_memory += p
            .requests
            .get("memory")
            .copied()
            .filter(|v| *v > 0)
            .unwrap_or(resources::DEFAULT_MEMORY_REQUEST);
        self.used_ports.extend(p.host_ports.iter().cloned());
        self.pods.push(p);
        self.generation += 1;
    }

    pub(crate) fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let p = self.pods.swap_remove(i);
        for (k, v) in &p.requests {
            *self.requested.entry(k.clone()).or_default() -= v;
        }
        self.req_cpu -= p.cpu;
        self.req_memory -= p.memory;
        self.non_zero_cpu -= p
            .requests
            .get("cpu")
            .copied()
            .filter(|v| *v > 0)
            .unwrap_or(resources::DEFAULT_MILLI_CPU_REQUEST);
        self.non_zero_memory -= p
            .requests
            .get("memory")
            .copied()
            .filter(|v| *v > 0)
            .unwrap_or(resources::DEFAULT_MEMORY_REQUEST);
        self.used_ports = self
            .pods
            .iter()
            .flat_map(|p| p.host_ports.iter().cloned())
            .collect();
        self.generation += 1;
        true
    }
}

/// Nodes and bound pods, kept from watches.
#[derive(Default)]
pub struct Cache {
    /// Nodes in a stable order (when they were first seen), for sampling; walked by
    /// position so a scheduling cycle hashes no node names.
    nodes: Vec<NodeInfo>,
    /// Node name → position in `nodes`.
    index: HashMap<String, usize>,
    /// Bound or assumed pods: uid → node.
    placed: HashMap<String, String>,
    /// Pods bound to nodes we have not seen yet.
    waiting: HashMap<String, Vec<PodInfo>>,
    /// Uids of placed pods with required anti-affinity.
    anti_affinity: HashSet<String>,
}

impl Cache {
    fn node_mut(&mut self, name: &str) -> Option<&mut NodeInfo> {
        let i = *self.index.get(name)?;
        Some(&mut self.nodes[i])
    }

    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut info = NodeInfo::new(node);
        match self.index.get(&name) {
            Some(&i) => {
                let old = std::mem::replace(&mut self.nodes[i], info);
                let info = &mut self.nodes[i];
                info.generation = old.generation + 1;
                for p in old.pods {
                    info.add_pod(p);
                }
            }
            None => {
                for p in self.waiting.remove(&name).unwrap_or_default() {
                    info.add_pod(p);
                }
                self.index.insert(name, self.nodes.len());
                self.nodes.push(info);
            }
        }
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(i) = self.index.remove(name) {
            // Keeps the order of the others, as sampling expects; node removal is rare.
            self.nodes.remove(i);
            for (pos, n) in self.nodes.iter().enumerate().skip(i) {
                self.index.insert(n.name.clone(), pos);
            }
            self.placed.retain(|_, n| n != name);
        }
    }

    /// Places a pod on its node (a bound pod seen in a watch, or an assumed one).
    pub fn place(&mut self, pod: PodInfo, node: &str) {
        if let Some(prev) = self.placed.get(&pod.uid).cloned() {
            if prev == node {
                // Refresh what we know of it (labels may have changed).
                if let Some(n) = self.node_mut(node) {
                    n.remove_pod(&pod.uid);
                    n.add_pod(pod);
                }
                return;
            }
            self.unplace(&pod.uid);
        }
        self.placed.insert(pod.uid.clone(), node.to_string());
        if pod.has_required_anti_affinity {
            self.anti_affinity.insert(pod.uid.clone());
        }
        match self.node_mut(node) {
            Some(n) => n.add_pod(pod),
            None => self.waiting.entry(node.to_string()).or_default().push(pod),
        }
    }

    /// Forgets a pod (deleted, finished, or a binding that failed).
    pub fn unplace(&mut self, uid: &str) {
        self.anti_affinity.remove(uid);
        if let Some(node) = self.placed.remove(uid) {
            if let Some(n) = self.node_mut(&node) {
                n.remove_pod(uid);
            }
            if let Some(w) = self.waiting.get_mut(&node) {
                w.retain(|p| p.uid != uid);
            }
        }
    }

    /// How many placed pods have required anti-affinity.
    pub fn anti_affinity_pods(&self) -> usize {
        self.anti_affinity.len()
    }

    pub fn is_placed(&self, uid: &str) -> bool {
        self.placed.contains_key(uid)
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Nodes in a stable order starting at `start` (wrapping), for sampling.
    pub fn nodes_from(&self, start: usize) -> impl Iterator<Item = &NodeInfo> {
        let (head, tail) = self.nodes.split_at(start.min(self.nodes.len()));
        tail.iter().chain(head)
    }

    pub fn all_nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter()
    }
}
