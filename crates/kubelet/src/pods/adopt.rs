//! What an earlier kubelet left running. Containers outlive the kubelet (containerd's
//! shims keep them), so at start the runtime's sandboxes and containers are grouped by
//! the pod UID label the kubelet puts on them (`spec::pod_labels`), each pod's worker
//! adopts its own group, and the groups no pod claims (pods deleted while the kubelet
//! was down) are removed once the API's first list says which pods exist.

use std::collections::HashMap;

use cri::v1::{Container, PodSandbox, PodSandboxState};

use crate::Runtime;

pub const UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_LABEL: &str = "io.kubernetes.container.name";
/// Upstream's container annotation holding the container's restartCount.
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";

/// One pod's sandboxes and containers in the runtime.
#[derive(Debug, Default)]
pub struct Found {
    pub sandboxes: Vec<PodSandbox>,
    pub containers: Vec<Container>,
}

/// Groups the runtime's sandboxes and containers by pod UID (sandboxes without our
/// label land under their CRI metadata's UID; containers under their sandbox's pod).
pub fn group(sandboxes: Vec<PodSandbox>, containers: Vec<Container>) -> HashMap<String, Found> {
    let mut by_uid: HashMap<String, Found> = HashMap::new();
    let mut pod_of_sandbox: HashMap<String, String> = HashMap::new();
    for s in sandboxes {
        let uid = s
            .labels
            .get(UID_LABEL)
            .cloned()
            .or_else(|| s.metadata.as_ref().map(|m| m.uid.clone()))
            .unwrap_or_default();
        pod_of_sandbox.insert(s.id.clone(), uid.clone());
        by_uid.entry(uid).or_default().sandboxes.push(s);
    }
    for c in containers {
        let uid = pod_of_sandbox
            .get(&c.pod_sandbox_id)
            .cloned()
            .or_else(|| c.labels.get(UID_LABEL).cloned())
            .unwrap_or_default();
        by_uid.entry(uid).or_default().containers.push(c);
    }
    by_uid
}

/// Lists everything in the runtime, grouped by pod.
pub async fn list(runtime: &Runtime) -> crate::Result<HashMap<String, Found>> {
    let rt = &runtime.runtime;
    Ok(group(
        rt.list_pod_sandbox(None).await?,
        rt.list_containers(None).await?,
    ))
}

/// A container's restart count: upstream's annotation, else the CRI attempt (which
/// this kubelet sets to the same number).
pub fn restart_count(c: &Container) -> u32 {
    c.annotations
        .get(RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| c.metadata.as_ref().map_or(0, |m| m.attempt))
}

/// The highest attempt among a container's log files (`<n>.log` in its log
/// directory), which outlive the runtime's records of its containers.
pub fn last_logged_attempt(dir: &std::path::Path) -> Option<u32> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .max()
}

fn is_ready(s: &PodSandbox) -> bool {
    s.state == PodSandboxState::SandboxReady as i32
}

impl Found {
    /// The sandbox to adopt: the newest ready one, or with `even_stopped` (a pod
    /// whose containers are never restarted) the newest at all.
    pub fn sandbox(&self, even_stopped: bool) -> Option<&PodSandbox> {
        self.sandboxes
            .iter()
            .filter(|s| even_stopped || is_ready(s))
            .max_by_key(|s| (is_ready(s), s.created_at))
    }

    /// The named container's instances in `sandbox`, newest first (by restart count,
    /// then creation): the current one, then the one `--previous` shows.
    pub fn instances(&self, sandbox: &str, name: &str) -> Vec<&Container> {
        let mut found: Vec<&Container> = self
            .containers
            .iter()
            .filter(|c| c.pod_sandbox_id == sandbox)
            .filter(|c| {
                let label = c.labels.get(CONTAINER_LABEL).map(String::as_str);
                label.or_else(|| c.metadata.as_ref().map(|m| m.name.as_str())) == Some(name)
            })
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse((restart_count(c), c.created_at)));
        found
    }

    /// Every sandbox but `keep`.
    pub fn others(&self, keep: Option<&str>) -> Vec<String> {
        self.sandboxes
            .iter()
            .filter(|s| Some(s.id.as_str()) != keep)
            .map(|s| s.id.clone())
            .collect()
    }
}

/// Stops and removes sandboxes (their containers go with them); idempotent.
pub async fn remove_sandboxes(runtime: &Runtime, ids: &[String]) {
    let rt = &runtime.runtime;
    for id in ids {
        for r in [
            rt.stop_pod_sandbox(id).await,
            rt.remove_pod_sandbox(id).await,
        ] {
            if let Err(e) = r
                && !e.is_not_found()
            {
                tracing::warn!(%id, error = %e, "cannot remove a sandbox");
            }
        }
    }
}

/// Removes what no pod claimed: pods deleted while the kubelet was down.
pub async fn remove_orphans(
    runtime: Runtime,
    config: std::sync::Arc<crate::Config>,
    orphans: HashMap<String, Found>,
) {
    for (uid, found) in orphans {
        let name = found.sandboxes.iter().find_map(|s| {
            s.metadata
                .as_ref()
                .map(|m| format!("{}/{}", m.namespace, m.name))
        });
        tracing::info!(%uid, pod = ?name, sandboxes = found.sandboxes.len(), "removing what a pod deleted while the kubelet was down left");
        remove_sandboxes(&runtime, &found.others(None)).await;
        // Containers whose sandbox was already gone.
        for c in &found.containers {
            if let Err(e) = runtime.runtime.remove_container(&c.id).await
                && !e.is_not_found()
            {
                tracing::warn!(id = %c.id, error = %e, "cannot remove a container");
            }
        }
        if !uid.is_empty() {
            crate::volumes::tear_down(&config, &uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cri::v1::{ContainerMetadata, PodSandboxMetadata};

    fn sandbox(id: &str, uid: &str, ready: bool, created_at: i64) -> PodSandbox {
        PodSandbox {
            id: id.into(),
            metadata: Some(PodSandboxMetadata {
                uid: uid.into(),
                name: "p".into(),
                namespace: "ns".into(),
                attempt: 0,
            }),
            state: if ready {
                PodSandboxState::SandboxReady
            } else {
                PodSandboxState::SandboxNotready
            } as i32,
            created_at,
            labels: HashMap::from([(UID_LABEL.into(), uid.into())]),
            ..Default::default()
        }
    }

    fn container(id: &str, sandbox: &str, name: &str, attempt: u32, created_at: i64) -> Container {
        Container {
            id: id.into(),
            pod_sandbox_id: sandbox.into(),
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt,
            }),
            created_at,
            labels: HashMap::from([(CONTAINER_LABEL.into(), name.into())]),
            ..Default::default()
        }
    }

    #[test]
    fn last_attempt_from_the_log_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_logged_attempt(&dir.path().join("none")), None);
        for f in ["0.log", "2.log", "10.log", "x.log", "3.log.tmp"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        assert_eq!(last_logged_attempt(dir.path()), Some(10));
    }

    #[test]
    fn groups_by_pod_uid_through_sandboxes() {
        let mut unlabelled = sandbox("s3", "u2", true, 1);
        unlabelled.labels.clear();
        let groups = group(
            vec![
                sandbox("s1", "u1", false, 1),
                sandbox("s2", "u1", true, 2),
                unlabelled,
            ],
            vec![
                container("c1", "s2", "app", 0, 5),
                container("c2", "s3", "app", 0, 5),
                // Its sandbox is gone: grouped by its own label.
                {
                    let mut c = container("c3", "gone", "app", 0, 5);
                    c.labels.insert(UID_LABEL.into(), "u3".into());
                    c
                },
            ],
        );
        assert_eq!(groups.len(), 3);
        assert_eq!(groups["u1"].sandboxes.len(), 2);
        assert_eq!(groups["u1"].containers[0].id, "c1");
        assert_eq!(groups["u2"].containers[0].id, "c2");
        assert_eq!(groups["u3"].containers[0].id, "c3");
    }

    #[test]
    fn adopts_the_newest_ready_sandbox() {
        let found = Found {
            sandboxes: vec![
                sandbox("old-ready", "u", true, 1),
                sandbox("new-ready", "u", true, 2),
                sandbox("newest-stopped", "u", false, 3),
            ],
            containers: vec![],
        };
        assert_eq!(found.sandbox(false).unwrap().id, "new-ready");
        // Even stopped: a ready one still wins.
        assert_eq!(found.sandbox(true).unwrap().id, "new-ready");
        assert_eq!(
            found.others(Some("new-ready")),
            ["old-ready", "newest-stopped"]
        );
        let stopped = Found {
            sandboxes: vec![sandbox("a", "u", false, 1), sandbox("b", "u", false, 2)],
            containers: vec![],
        };
        assert!(stopped.sandbox(false).is_none());
        assert_eq!(stopped.sandbox(true).unwrap().id, "b");
    }

    #[test]
    fn instances_newest_restart_first_and_restart_count_from_the_annotation() {
        let mut annotated = container("c2", "s", "app", 0, 1);
        annotated
            .annotations
            .insert(RESTART_COUNT.into(), "2".into());
        let found = Found {
            sandboxes: vec![],
            containers: vec![
                container("c0", "s", "app", 0, 1),
                container("c1", "s", "app", 1, 2),
                annotated,
                container("other", "s", "sidecar", 5, 9),
                container("elsewhere", "t", "app", 9, 9),
            ],
        };
        let ids: Vec<&str> = found
            .instances("s", "app")
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["c2", "c1", "c0"]);
        assert_eq!(restart_count(found.instances("s", "app")[0]), 2);
        assert_eq!(restart_count(found.instances("s", "sidecar")[0]), 5);
    }
}
