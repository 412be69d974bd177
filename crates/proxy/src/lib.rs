//! The service proxy (upstream's kube-proxy in nftables mode): Services and their
//! EndpointSlices become rules in nftables tables, a main one (`ip k8rs-proxy`) and
//! shards of it (`tables.rs`): ClusterIPs, NodePorts on the node's addresses,
//! LoadBalancer ingress IPs and externalIPs are DNATed to ready endpoints, picked at
//! random or by ClientIP affinity; services without endpoints are rejected instead of
//! hanging; traffic from outside the pod network (and hairpin traffic) is
//! masqueraded. Changes are applied incrementally, each batch one atomic transaction
//! (`nft -f` for whole loads, netlink batches for changes). `nft::cleanup` removes it
//! all (`--cleanup`).

pub mod model;
mod netlink;
pub mod nft;
pub mod programmed;
pub mod rules;
mod sync;
pub mod tables;

pub use sync::{DEFAULT_MIN_SYNC_INTERVAL, Options, run};
pub use tables::DEFAULT_SHARDS;
