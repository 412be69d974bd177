//! Host ports: a pod asking for a host port fits only where that port (protocol and
//! address) is free.

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::{CycleState, FilterPlugin, Status};

pub const NAME: &str = "NodePorts";

pub struct NodePorts;

fn conflicts(want: &(String, String, i32), used: &(String, String, i32)) -> bool {
    let (wp, wip, wport) = want;
    let (up, uip, uport) = used;
    wport == uport && wp == up && (wip == uip || wip == "0.0.0.0" || uip == "0.0.0.0")
}

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let clash = pod
            .host_ports
            .iter()
            .any(|w| node.used_ports.iter().any(|u| conflicts(w, u)));
        if clash {
            Err(Status::unschedulable(
                NAME,
                "node(s) didn't have free ports for the requested pod ports",
            ))
        } else {
            Ok(())
        }
    }
}
