//! Node resources: a pod fits where allocatable minus what bound pods request covers
//! its requests (and the node's pod count allows one more); among those, emptier
//! nodes score higher (upstream's LeastAllocated strategy).

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, MAX_NODE_SCORE, ScorePlugin, Status};
use crate::resources::{DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST};

pub const NAME: &str = "NodeResourcesFit";

pub struct NodeResourcesFit;

/// The reasons a pod does not fit a node's resources, upstream-worded.
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.alloc_pods {
        reasons.push("Too many pods".to_string());
    }
    if pod.cpu > 0 && pod.cpu > node.alloc_cpu - node.req_cpu {
        reasons.push("Insufficient cpu".to_string());
    }
    if pod.memory > 0 && pod.memory > node.alloc_memory - node.req_memory {
        reasons.push("Insufficient memory".to_string());
    }
    if pod.other_requests {
        for (name, want) in &pod.requests {
            if *want <= 0 || matches!(name.as_str(), "cpu" | "memory" | "pods") {
                continue;
            }
            let free = node.allocatable.get(name).copied().unwrap_or(0)
                - node.requested.get(name).copied().unwrap_or(0);
            if *want > free {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    reasons
}

/// The pod's CPU and memory requests with upstream's defaults for scoring.
pub fn non_zero(pod: &PodInfo) -> (i64, i64) {
    let cpu = if pod.cpu > 0 {
        pod.cpu
    } else {
        DEFAULT_MILLI_CPU_REQUEST
    };
    let mem = if pod.memory > 0 {
        pod.memory
    } else {
        DEFAULT_MEMORY_REQUEST
    };
    (cpu, mem)
}

impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Status {
                plugin: NAME,
                reasons,
                unresolvable: false,
            })
        }
    }
}

fn least_allocated(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl ScorePlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (cpu, mem) = non_zero(pod);
        let cpu_score = least_allocated(node.non_zero_cpu + cpu, node.alloc_cpu);
        let mem_score = least_allocated(node.non_zero_memory + mem, node.alloc_memory);
        (cpu_score + mem_score) / 2
    }
}
