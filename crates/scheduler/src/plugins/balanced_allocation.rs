//! Balanced allocation: prefer nodes where CPU and memory would be used in similar
//! proportions after placing the pod.

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, ScorePlugin};

use super::node_resources_fit::non_zero;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct BalancedAllocation;

impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (cpu, mem) = non_zero(pod);
        let fraction = |used: i64, cap: i64| {
            if cap <= 0 {
                1.0
            } else {
                (used as f64 / cap as f64).min(1.0)
            }
        };
        let c = fraction(node.non_zero_cpu + cpu, node.alloc_cpu);
        let m = fraction(node.non_zero_memory + mem, node.alloc_memory);
        let std = (c - m).abs() / 2.0;
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}
