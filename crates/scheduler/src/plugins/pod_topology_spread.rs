//! Topology spread constraints: with `DoNotSchedule`, a node is feasible only if
//! placing the pod keeps the skew between its domain and the emptiest domain within
//! `maxSkew`; `ScheduleAnyway` constraints prefer less crowded domains.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use api::selectors::LabelSelector;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Status, default_normalize};

use super::node_affinity::pod_matches_node;

pub const NAME: &str = "PodTopologySpread";
const FILTER_STATE: &str = "PodTopologySpread/filter";
const SCORE_STATE: &str = "PodTopologySpread/score";

pub struct PodTopologySpread;

struct Constraint {
    key: String,
    max_skew: i64,
    selector: LabelSelector,
    /// Whether the incoming pod counts toward its own constraint.
    self_match: bool,
    counts: HashMap<String, i64>,
    min: i64,
}

fn constraints(pod: &PodInfo, hard: bool) -> Vec<&TopologySpreadConstraint> {
    let want = if hard {
        "DoNotSchedule"
    } else {
        "ScheduleAnyway"
    };
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == want)
        .collect()
}

/// Counts matching pods per domain over the nodes the pod could land on.
fn count(pod: &PodInfo, cache: &Cache, list: &[&TopologySpreadConstraint]) -> Vec<Constraint> {
    let empty = BTreeMap::new();
    let mut out: Vec<Constraint> = list
        .iter()
        .filter_map(|c| {
            let selector = LabelSelector::from_k8s(c.label_selector.as_ref()).ok()?;
            let self_match = selector.matches_map(pod.labels().unwrap_or(&empty));
            Some(Constraint {
                key: c.topology_key.clone(),
                max_skew: i64::from(c.max_skew),
                selector,
                self_match,
                counts: HashMap::new(),
                min: 0,
            })
        })
        .collect();
    for node in cache.all_nodes() {
        if !pod_matches_node(pod, node) {
            continue;
        }
        for c in out.iter_mut() {
            let Some(d) = node.labels().and_then(|l| l.get(&c.key)) else {
                continue;
            };
            let n = node
                .pods
                .iter()
                .filter(|p| {
                    p.namespace() == pod.namespace()
                        && c.selector.matches_map(p.labels().unwrap_or(&empty))
                })
                .count() as i64;
            *c.counts.entry(d.clone()).or_default() += n;
        }
    }
    for c in out.iter_mut() {
        c.min = c.counts.values().copied().min().unwrap_or(0);
    }
    out
}

impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        let list = constraints(pod, true);
        if !list.is_empty() {
            state.write(FILTER_STATE, count(pod, cache, &list));
        }
        Ok(())
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(cs) = state.read::<Vec<Constraint>>(FILTER_STATE) else {
            return Ok(());
        };
        for c in cs {
            let Some(d) = node.labels().and_then(|l| l.get(&c.key)) else {
                return Err(Status::unresolvable(
                    NAME,
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                ));
            };
            let here = c.counts.get(d).copied().unwrap_or(0) + i64::from(c.self_match);
            if here - c.min > c.max_skew {
                return Err(Status::unschedulable(
                    NAME,
                    "node(s) didn't match pod topology spread constraints",
                ));
            }
        }
        Ok(())
    }
}

impl ScorePlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn weight(&self) -> i64 {
        2
    }

    fn pre_score(
        &self,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        cache: &Cache,
        state: &mut CycleState,
    ) {
        let list = constraints(pod, false);
        if !list.is_empty() {
            state.write(SCORE_STATE, count(pod, cache, &list));
        }
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(cs) = state.read::<Vec<Constraint>>(SCORE_STATE) else {
            return 0;
        };
        cs.iter()
            .map(|c| {
                node.labels()
                    .and_then(|l| l.get(&c.key))
                    .and_then(|d| c.counts.get(d))
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}
