//! Preemption (the DefaultPreemption PostFilter): when a pod fits nowhere, find the
//! node where evicting the fewest, least important lower-priority pods lets it fit.

use crate::algorithm::{FitError, Profile, histogram};
use crate::cache::{Cache, PodInfo};

/// Pods to evict from `node` so the preemptor fits there.
#[derive(Debug)]
pub struct Plan {
    pub node: String,
    pub victims: Vec<PodInfo>,
}

const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A plan, or the `preemption: …` message explaining why there is none.
pub fn find(
    profile: &Profile,
    cache: &Cache,
    pod: &PodInfo,
    fit: &FitError,
) -> Result<Plan, String> {
    let never = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never");
    if never {
        return Err("preemption: not eligible due to preemptionPolicy=Never".to_string());
    }
    let state = match profile.pre_filter(pod, cache) {
        Ok(s) => s,
        Err(_) => {
            let reasons = std::iter::repeat_n(NOT_HELPFUL.to_string(), fit.num_all_nodes);
            return Err(message(fit.num_all_nodes, reasons));
        }
    };
    let mut reasons = Vec::new();
    let mut best: Option<(Plan, (i32, i64, usize))> = None;
    for node in cache.all_nodes() {
        if fit.statuses.get(&node.name).is_some_and(|s| s.unresolvable) {
            reasons.push(NOT_HELPFUL.to_string());
            continue;
        }
        let mut lower: Vec<PodInfo> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        if lower.is_empty() {
            reasons.push(NO_VICTIMS.to_string());
            continue;
        }
        let mut trial = node.clone();
        for p in &lower {
            trial.remove_pod(&p.uid);
        }
        if profile.run_filters(&state, pod, &trial).is_err() {
            reasons.push(NO_VICTIMS.to_string());
            continue;
        }
        // Reprieve as many as possible, most important first.
        lower.sort_by_key(|p| std::cmp::Reverse(p.priority));
        let mut victims = Vec::new();
        for p in lower {
            trial.add_pod(p.clone());
            if profile.run_filters(&state, pod, &trial).is_err() {
                trial.remove_pod(&p.uid);
                victims.push(p);
            }
        }
        let rank = (
            victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN),
            victims.iter().map(|v| i64::from(v.priority)).sum::<i64>(),
            victims.len(),
        );
        if best.as_ref().is_none_or(|(_, r)| rank < *r) {
            best = Some((
                Plan {
                    node: node.name.clone(),
                    victims,
                },
                rank,
            ));
        }
    }
    match best {
        Some((plan, _)) => Ok(plan),
        None => Err(message(fit.num_all_nodes, reasons.into_iter())),
    }
}

fn message(all: usize, reasons: impl Iterator<Item = String>) -> String {
    let h = histogram(reasons);
    if h.is_empty() {
        format!("preemption: 0/{all} nodes are available")
    } else {
        format!("preemption: 0/{all} nodes are available: {}", h.join(", "))
    }
}
