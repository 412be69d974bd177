//! The scheduler (upstream's kube-scheduler, default profile): watches pods and nodes,
//! keeps a cache of what runs where, takes pending pods from a priority queue, picks a
//! node with filter and score plugins, preempts lower-priority pods when nothing fits,
//! and binds through `pods/binding`. Pods for other schedulers are left alone.

pub mod algorithm;
pub mod cache;
pub mod framework;
pub mod plugins;
pub mod preemption;
pub mod queue;
pub mod resources;
mod run;

pub use run::{Options, run};

/// The `schedulerName` this scheduler serves.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
