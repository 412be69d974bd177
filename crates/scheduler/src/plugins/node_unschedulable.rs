//! Cordoned nodes (`spec.unschedulable`) take no pods unless the pod tolerates the
//! `node.kubernetes.io/unschedulable` taint.

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, Status};

pub const NAME: &str = "NodeUnschedulable";
const TAINT: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let cordoned = node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        if !cordoned {
            return Ok(());
        }
        let tolerated = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_ref())
            .is_some_and(|ts| {
                ts.iter().any(|t| {
                    let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty() || k == TAINT);
                    let effect_ok = t
                        .effect
                        .as_deref()
                        .is_none_or(|e| e.is_empty() || e == "NoSchedule");
                    let op_ok =
                        t.operator.as_deref() == Some("Exists") || t.key.as_deref() == Some(TAINT);
                    key_ok && effect_ok && op_ok
                })
            });
        if tolerated {
            Ok(())
        } else {
            Err(Status::unresolvable(NAME, "node(s) were unschedulable"))
        }
    }
}
