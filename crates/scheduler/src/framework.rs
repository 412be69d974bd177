//! The scheduling framework's extension points, as upstream's: PreFilter (per pod),
//! Filter (per node), PreScore/Score/NormalizeScore. Plugins live in `plugins/`, one
//! module each, listed in `plugins::registry`.

use std::any::Any;
use std::collections::HashMap;

use crate::cache::{Cache, NodeInfo, PodInfo};

/// Upstream's score range.
pub const MAX_NODE_SCORE: i64 = 100;

/// Why a pod does not fit (a node, or every node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub plugin: &'static str,
    pub reasons: Vec<String>,
    /// Removing pods from the node would not help (preemption skips such nodes).
    pub unresolvable: bool,
}

impl Status {
    pub fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Self {
            plugin,
            reasons: vec![reason.into()],
            unresolvable: false,
        }
    }

    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Self {
            plugin,
            reasons: vec![reason.into()],
            unresolvable: true,
        }
    }
}

/// Data plugins compute once per scheduling cycle and read on every node.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|b| b.downcast_ref())
    }
}

pub trait FilterPlugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Once per pod, before any node: precompute, or fail the pod everywhere.
    fn pre_filter(
        &self,
        _pod: &PodInfo,
        _cache: &Cache,
        _state: &mut CycleState,
    ) -> Result<(), Status> {
        Ok(())
    }

    /// Whether the pod fits `node`.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status>;
}

pub trait ScorePlugin: Send + Sync {
    fn name(&self) -> &'static str;

    fn weight(&self) -> i64 {
        1
    }

    /// Once per pod, with the feasible nodes.
    fn pre_score(
        &self,
        _pod: &PodInfo,
        _nodes: &[&NodeInfo],
        _cache: &Cache,
        _state: &mut CycleState,
    ) {
    }

    /// A raw score for `node`.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64;

    /// Maps raw scores onto 0..=MAX_NODE_SCORE, when the plugin's scores need it.
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// Scales scores so the highest is MAX_NODE_SCORE (upstream's DefaultNormalizeScore);
/// `reverse` makes lower raw scores better.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}
