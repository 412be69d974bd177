//! A pod naming a node (`spec.nodeName` set before scheduling) fits only that node.

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, Status};

pub const NAME: &str = "NodeName";

pub struct NodeName;

impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            Some(wanted) if wanted != node.name => Err(Status::unresolvable(
                NAME,
                "node(s) didn't match the requested node name",
            )),
            _ => Ok(()),
        }
    }
}
