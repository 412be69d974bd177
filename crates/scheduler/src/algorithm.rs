//! One scheduling decision: filter a sample of nodes (upstream's adaptive
//! percentageOfNodesToScore), score the feasible ones, pick the best (ties at random),
//! or explain why no node fits in upstream's words.

use std::collections::BTreeMap;

use rand::Rng;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Status};

/// Why a pod fits no node.
#[derive(Debug, Default, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Set when a PreFilter plugin failed the pod for every node.
    pub pre_filter: Option<Status>,
    /// The first failing status of each node that was tried.
    pub statuses: BTreeMap<String, Status>,
    /// The preemption outcome, added by PostFilter.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// `0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu.`
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        if let Some(p) = &self.pre_filter {
            msg.push_str(&format!(" {}.", p.reasons.join(", ")));
        } else {
            let h = histogram(
                self.statuses
                    .values()
                    .flat_map(|s| s.reasons.iter().cloned()),
            );
            if !h.is_empty() {
                msg.push_str(&format!(" {}.", h.join(", ")));
            }
        }
        if let Some(post) = &self.post_filter_msg {
            msg.push_str(&format!(" {post}."));
        }
        msg
    }
}

/// `["2 Insufficient cpu", "1 node(s) were unschedulable"]`, sorted as upstream sorts.
pub fn histogram(reasons: impl Iterator<Item = String>) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut out: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    out.sort();
    out
}

/// How many feasible nodes to look for before scoring (upstream's adaptive default).
pub fn nodes_to_find(all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all <= MIN_FEASIBLE {
        return all;
    }
    let pct = (50i64 - all as i64 / 125).max(5) as usize;
    (all * pct / 100).max(MIN_FEASIBLE)
}

pub struct Profile {
    pub filters: Vec<Box<dyn FilterPlugin>>,
    pub scores: Vec<Box<dyn ScorePlugin>>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            filters: crate::plugins::filters(),
            scores: crate::plugins::scores(),
        }
    }
}

impl Profile {
    /// The first filter that fails `pod` on `node`.
    pub fn run_filters(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Result<(), Status> {
        self.filters
            .iter()
            .try_for_each(|f| f.filter(state, pod, node))
    }

    pub fn pre_filter(&self, pod: &PodInfo, cache: &Cache) -> Result<CycleState, Status> {
        let mut state = CycleState::default();
        for f in &self.filters {
            f.pre_filter(pod, cache, &mut state)?;
        }
        Ok(state)
    }

    /// Picks a node for `pod`, trying nodes from `*start` on (advanced for fairness).
    pub fn schedule(
        &self,
        cache: &Cache,
        pod: &PodInfo,
        start: &mut usize,
    ) -> Result<String, FitError> {
        let all = cache.node_count();
        let mut err = FitError {
            num_all_nodes: all,
            ..Default::default()
        };
        if all == 0 {
            return Err(err);
        }
        let mut state = match self.pre_filter(pod, cache) {
            Ok(s) => s,
            Err(status) => {
                err.pre_filter = Some(status);
                return Err(err);
            }
        };
        let want = nodes_to_find(all);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want);
        let mut visited = 0;
        for node in cache.nodes_from(*start % all) {
            visited += 1;
            match self.run_filters(&state, pod, node) {
                Ok(()) => feasible.push(node),
                Err(status) => {
                    err.statuses.insert(node.name.clone(), status);
                }
            }
            if feasible.len() >= want {
                break;
            }
        }
        *start = (*start + visited) % all;
        match feasible.len() {
            0 => return Err(err),
            1 => return Ok(feasible[0].name.clone()),
            _ => {}
        }
        let mut totals = vec![0i64; feasible.len()];
        for s in &self.scores {
            s.pre_score(pod, &feasible, cache, &mut state);
            let mut raw: Vec<i64> = feasible.iter().map(|n| s.score(&state, pod, n)).collect();
            s.normalize(&mut raw);
            for (t, r) in totals.iter_mut().zip(raw) {
                *t += r * s.weight();
            }
        }
        // The best score; among equals, each is equally likely (reservoir sampling).
        let mut rng = rand::rng();
        let (mut best, mut best_score, mut ties) = (0, i64::MIN, 0);
        for (i, score) in totals.iter().enumerate() {
            if *score > best_score {
                (best, best_score, ties) = (i, *score, 1);
            } else if *score == best_score {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
        }
        Ok(feasible[best].name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_matches_upstream() {
        let mut e = FitError {
            num_all_nodes: 3,
            ..Default::default()
        };
        e.statuses.insert(
            "a".into(),
            Status::unresolvable("NodeUnschedulable", "node(s) were unschedulable"),
        );
        e.statuses.insert(
            "b".into(),
            Status::unschedulable("NodeResourcesFit", "Insufficient cpu"),
        );
        e.statuses.insert(
            "c".into(),
            Status::unschedulable("NodeResourcesFit", "Insufficient cpu"),
        );
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
        );
        assert_eq!(nodes_to_find(50), 50);
        assert_eq!(nodes_to_find(5000), 500);
    }
}
