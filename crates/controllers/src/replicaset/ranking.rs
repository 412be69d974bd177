//! Which pods go first when a set scales down (upstream's ActivePodsWithRanks, with
//! logarithmic scale-down): unscheduled before scheduled, Pending before Unknown before
//! Running, not ready before ready, lower pod-deletion-cost first, pods doubled up on
//! a node with more of their siblings first, recently ready before long ready, more
//! restarts first, newer before older.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::pods::{is_active, is_ready, phase};
use crate::podutil::{created, deletion_cost, max_restarts, node_name, ready_since};

/// The `count` pods of `candidates` to delete. `related` are the active pods of this
/// set and its siblings (same owner), which rank pods sharing a node.
pub fn pods_to_delete(
    mut candidates: Vec<Arc<Pod>>,
    related: &[Arc<Pod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    if count < candidates.len() {
        let mut on_node: HashMap<&str, usize> = HashMap::new();
        for p in related.iter().filter(|p| is_active(p)) {
            *on_node.entry(node_name(p)).or_default() += 1;
        }
        let rank = |p: &Pod| on_node.get(node_name(p)).copied().unwrap_or(0);
        candidates.sort_by(|a, b| compare(a, b, rank(a), rank(b), now));
    }
    candidates.truncate(count);
    candidates
}

fn phase_ordinal(p: &Pod) -> u8 {
    match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// Log2 of the age in nanoseconds: pods of similar age compare equal.
fn log_age(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos > 0 {
        (nanos as f64).log2() as i64
    } else {
        -1
    }
}

/// Newer first; a missing time first of all; similar ages by uid.
fn newer_first(
    a: Option<Timestamp>,
    b: Option<Timestamp>,
    pa: &Pod,
    pb: &Pod,
    now: Timestamp,
) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => match log_age(x, now).cmp(&log_age(y, now)) {
            Ordering::Equal => pa.metadata.uid.cmp(&pb.metadata.uid),
            o => o,
        },
    }
}

/// Less means deleted first.
pub fn compare(a: &Pod, b: &Pod, rank_a: usize, rank_b: usize, now: Timestamp) -> Ordering {
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    let by_phase = phase_ordinal(a).cmp(&phase_ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return if ra {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let by_cost = deletion_cost(a).cmp(&deletion_cost(b));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if ra && rb {
        let o = newer_first(ready_since(a), ready_since(b), a, b, now);
        if o != Ordering::Equal {
            return o;
        }
    }
    let by_restarts = max_restarts(b).cmp(&max_restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    newer_first(created(&a.metadata), created(&b.metadata), a, b, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready: bool, created_ago: i64) -> Arc<Pod> {
        let now = Timestamp::now();
        let created = now - jiff::SignedDuration::from_secs(created_ago);
        let mut v = json!({
            "metadata": {"name": name, "uid": name, "creationTimestamp": created.to_string()},
            "spec": {"containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": created.to_string()}]},
        });
        if !node.is_empty() {
            v["spec"]["nodeName"] = json!(node);
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn unscheduled_pending_and_unready_pods_go_first() {
        let pods = vec![
            pod("ready", "n1", "Running", true, 100),
            pod("unready", "n1", "Running", false, 100),
            pod("pending", "n1", "Pending", false, 100),
            pod("unscheduled", "", "Pending", false, 100),
        ];
        let out = pods_to_delete(pods.clone(), &pods, 3, Timestamp::now());
        assert_eq!(names(&out), ["unscheduled", "pending", "unready"]);
    }

    #[test]
    fn newer_pods_go_before_older_ones() {
        let pods = vec![
            pod("old", "n1", "Running", true, 100_000),
            pod("new", "n2", "Running", true, 10),
        ];
        let out = pods_to_delete(pods.clone(), &pods, 1, Timestamp::now());
        assert_eq!(names(&out), ["new"]);
    }

    #[test]
    fn doubled_up_pods_go_first() {
        let pods = vec![
            pod("alone", "n1", "Running", true, 10),
            pod("pair-a", "n2", "Running", true, 100_000),
            pod("pair-b", "n2", "Running", true, 100_000),
        ];
        let out = pods_to_delete(pods.clone(), &pods, 1, Timestamp::now());
        assert!(names(&out)[0].starts_with("pair"));
    }
}
