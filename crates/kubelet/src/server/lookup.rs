//! Finding a pod's sandbox and containers in the runtime by the labels the kubelet
//! puts on them (see `pods::spec::pod_labels`), so the API needs no pod-worker state.

use std::collections::HashMap;

use cri::RuntimeService;
use cri::v1::{
    Container, ContainerFilter, PodSandboxFilter, PodSandboxState, PodSandboxStateValue,
};

/// Why a lookup failed, worded for the caller (the API server shows it to the user).
#[derive(Debug)]
pub enum NotFound {
    Pod(String),
    Container(String),
    Runtime(String),
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFound::Pod(m) | NotFound::Container(m) | NotFound::Runtime(m) => f.write_str(m),
        }
    }
}

fn pod_selector(namespace: &str, pod: &str) -> HashMap<String, String> {
    HashMap::from([
        ("io.kubernetes.pod.namespace".into(), namespace.into()),
        ("io.kubernetes.pod.name".into(), pod.into()),
    ])
}

/// The id of the pod's ready sandbox (the newest, if an old one lingers).
pub async fn sandbox(
    rt: &dyn RuntimeService,
    namespace: &str,
    pod: &str,
) -> Result<String, NotFound> {
    let filter = PodSandboxFilter {
        state: Some(PodSandboxStateValue {
            state: PodSandboxState::SandboxReady as i32,
        }),
        label_selector: pod_selector(namespace, pod),
        ..Default::default()
    };
    let sandboxes = rt
        .list_pod_sandbox(Some(filter))
        .await
        .map_err(|e| NotFound::Runtime(e.to_string()))?;
    sandboxes
        .into_iter()
        .max_by_key(|s| s.created_at)
        .map(|s| s.id)
        .ok_or_else(|| NotFound::Pod(format!("pod {namespace}/{pod} is not running on this node")))
}

/// The container's instances, newest attempt first: the current one, then the dead
/// one kept for `--previous`.
pub async fn containers(
    rt: &dyn RuntimeService,
    namespace: &str,
    pod: &str,
    container: &str,
) -> Result<Vec<Container>, NotFound> {
    let mut labels = pod_selector(namespace, pod);
    labels.insert("io.kubernetes.container.name".into(), container.into());
    let filter = ContainerFilter {
        label_selector: labels,
        ..Default::default()
    };
    let mut found = rt
        .list_containers(Some(filter))
        .await
        .map_err(|e| NotFound::Runtime(e.to_string()))?;
    if found.is_empty() {
        return Err(NotFound::Container(format!(
            "container \"{container}\" in pod \"{pod}\" is not available"
        )));
    }
    let attempt = |c: &Container| c.metadata.as_ref().map_or(0, |m| m.attempt);
    found.sort_by_key(|c| std::cmp::Reverse((attempt(c), c.created_at)));
    Ok(found)
}
