//! The service proxy (upstream's kube-proxy in nftables mode): Services and their
//! EndpointSlices become rules in one nftables table, `ip k8rs-proxy`: ClusterIPs,
//! NodePorts on the node's addresses, LoadBalancer ingress IPs and externalIPs are
//! DNATed to ready endpoints, picked at random or by ClientIP affinity; services
//! without endpoints are rejected instead of hanging; traffic from outside the pod
//! network (and hairpin traffic) is masqueraded. Changes are applied incrementally,
//! each batch one atomic transaction (`nft -f` for the whole table, netlink batches
//! for changes).

pub mod model;
mod netlink;
pub mod nft;
mod programmed;
pub mod rules;
mod sync;

pub use sync::{DEFAULT_MIN_SYNC_INTERVAL, Options, run};
