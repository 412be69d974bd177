//! Inter-pod affinity: required affinity/anti-affinity of the incoming pod, the
//! required anti-affinity of pods already placed (filter), and preferred terms
//! (score), by topology domain (`topologyKey`).

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{PodAffinityTerm, WeightedPodAffinityTerm};

use api::selectors::LabelSelector;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Status};

pub const NAME: &str = "InterPodAffinity";
const STATE: &str = "InterPodAffinity/pre";
const SCORE_STATE: &str = "InterPodAffinity/score";

pub struct InterPodAffinity;

/// One term, ready to match pods.
struct Term {
    topology_key: String,
    selector: LabelSelector,
    /// `None`: every namespace.
    namespaces: Option<HashSet<String>>,
}

impl Term {
    fn new(t: &PodAffinityTerm, own_ns: &str) -> Option<Self> {
        let selector = LabelSelector::from_k8s(t.label_selector.as_ref()).ok()?;
        let listed: HashSet<String> = t.namespaces.iter().flatten().cloned().collect();
        let all = t
            .namespace_selector
            .as_ref()
            .is_some_and(|s| s.match_labels.is_none() && s.match_expressions.is_none());
        let namespaces = if all {
            None
        } else if listed.is_empty() {
            Some(HashSet::from([own_ns.to_string()]))
        } else {
            Some(listed)
        };
        Some(Self {
            topology_key: t.topology_key.clone(),
            selector,
            namespaces,
        })
    }

    fn matches(&self, pod: &PodInfo) -> bool {
        let ns_ok = self
            .namespaces
            .as_ref()
            .is_none_or(|n| n.contains(pod.namespace()));
        let empty = BTreeMap::new();
        ns_ok && self.selector.matches_map(pod.labels().unwrap_or(&empty))
    }
}

fn domain<'a>(node: &'a NodeInfo, key: &str) -> Option<&'a str> {
    node.labels().and_then(|l| l.get(key)).map(String::as_str)
}

fn required(pod: &PodInfo) -> (Vec<Term>, Vec<Term>) {
    let Some(a) = pod.pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return (Vec::new(), Vec::new());
    };
    let ns = pod.namespace();
    let terms = |v: Option<&Vec<PodAffinityTerm>>| {
        v.into_iter()
            .flatten()
            .filter_map(|t| Term::new(t, ns))
            .collect()
    };
    (
        terms(a.pod_affinity.as_ref().and_then(|p| {
            p.required_during_scheduling_ignored_during_execution
                .as_ref()
        })),
        terms(a.pod_anti_affinity.as_ref().and_then(|p| {
            p.required_during_scheduling_ignored_during_execution
                .as_ref()
        })),
    )
}

/// Per-cycle facts: for each term, the domains holding a matching pod.
#[derive(Default)]
struct Pre {
    affinity: Vec<(Term, HashSet<String>)>,
    anti: Vec<(Term, HashSet<String>)>,
    /// Domains (key, value) where an existing pod's anti-affinity forbids this pod.
    forbidden: HashSet<(String, String)>,
    self_matches_all_affinity: bool,
}

impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(
        &self,
        pod: &PodInfo,
        cache: &Cache,
        state: &mut CycleState,
    ) -> Result<(), Status> {
        let (affinity, anti) = required(pod);
        if affinity.is_empty() && anti.is_empty() && cache.anti_affinity_pods() == 0 {
            return Ok(());
        }
        let mut pre = Pre {
            self_matches_all_affinity: affinity.iter().all(|t| t.matches(pod)),
            affinity: affinity.into_iter().map(|t| (t, HashSet::new())).collect(),
            anti: anti.into_iter().map(|t| (t, HashSet::new())).collect(),
            ..Default::default()
        };
        for node in cache.all_nodes() {
            for existing in &node.pods {
                for (t, domains) in pre.affinity.iter_mut().chain(pre.anti.iter_mut()) {
                    if let Some(d) = domain(node, &t.topology_key)
                        && t.matches(existing)
                    {
                        domains.insert(d.to_string());
                    }
                }
                if existing.has_required_anti_affinity {
                    for t in required(existing).1 {
                        if t.matches(pod)
                            && let Some(d) = domain(node, &t.topology_key)
                        {
                            pre.forbidden
                                .insert((t.topology_key.clone(), d.to_string()));
                        }
                    }
                }
            }
        }
        state.write(STATE, pre);
        Ok(())
    }

    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let Some(pre) = state.read::<Pre>(STATE) else {
            return Ok(());
        };
        if pre
            .forbidden
            .iter()
            .any(|(k, v)| domain(node, k) == Some(v.as_str()))
        {
            return Err(Status::unschedulable(
                NAME,
                "node(s) didn't satisfy existing pods anti-affinity rules",
            ));
        }
        let no_match_anywhere = pre.affinity.iter().all(|(_, d)| d.is_empty());
        let affinity_ok = pre.affinity.iter().all(|(t, domains)| {
            domain(node, &t.topology_key).is_some_and(|d| domains.contains(d))
                || (no_match_anywhere
                    && pre.self_matches_all_affinity
                    && domain(node, &t.topology_key).is_some())
        });
        if !affinity_ok {
            return Err(Status::unresolvable(
                NAME,
                "node(s) didn't match pod affinity rules",
            ));
        }
        let anti_ok = pre
            .anti
            .iter()
            .all(|(t, domains)| domain(node, &t.topology_key).is_none_or(|d| !domains.contains(d)));
        if !anti_ok {
            return Err(Status::unschedulable(
                NAME,
                "node(s) didn't match pod anti-affinity rules",
            ));
        }
        Ok(())
    }
}

/// Preferred terms: (weight, term), anti-affinity weights negative.
fn preferred(pod: &PodInfo) -> Vec<(i64, Term)> {
    let Some(a) = pod.pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return Vec::new();
    };
    let ns = pod.namespace();
    let weighted = |v: Option<&Vec<WeightedPodAffinityTerm>>, sign: i64| -> Vec<(i64, Term)> {
        v.into_iter()
            .flatten()
            .filter_map(|w| {
                Term::new(&w.pod_affinity_term, ns).map(|t| (sign * i64::from(w.weight), t))
            })
            .collect()
    };
    let mut out = weighted(
        a.pod_affinity.as_ref().and_then(|p| {
            p.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }),
        1,
    );
    out.extend(weighted(
        a.pod_anti_affinity.as_ref().and_then(|p| {
            p.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }),
        -1,
    ));
    out
}

impl ScorePlugin for InterPodAffinity {
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
        let terms = preferred(pod);
        if terms.is_empty() {
            return;
        }
        // (topologyKey, value) → summed weight of matching pods there.
        let mut by_domain: BTreeMap<(String, String), i64> = BTreeMap::new();
        for node in cache.all_nodes() {
            for existing in &node.pods {
                for (w, t) in &terms {
                    if let Some(d) = domain(node, &t.topology_key)
                        && t.matches(existing)
                    {
                        *by_domain
                            .entry((t.topology_key.clone(), d.to_string()))
                            .or_default() += w;
                    }
                }
            }
        }
        state.write(SCORE_STATE, by_domain);
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(by_domain) = state.read::<BTreeMap<(String, String), i64>>(SCORE_STATE) else {
            return 0;
        };
        by_domain
            .iter()
            .filter(|((k, v), _)| domain(node, k) == Some(v.as_str()))
            .map(|(_, w)| *w)
            .sum()
    }

    fn normalize(&self, scores: &mut [i64]) {
        let (min, max) = (
            scores.iter().copied().min().unwrap_or(0),
            scores.iter().copied().max().unwrap_or(0),
        );
        if max == min {
            scores.iter_mut().for_each(|s| *s = 0);
            return;
        }
        for s in scores.iter_mut() {
            *s = crate::framework::MAX_NODE_SCORE * (*s - min) / (max - min);
        }
    }
}
