//! Pod volumes: set up before the pod's sandbox and containers, mounted into the
//! containers through CRI, removed once the pod is gone.
//!
//! Layout, as upstream's /var/lib/kubelet (kept apart from the pod logs under
//! `<data>/pods`): `<data>/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`
//! for emptyDir, configMap, secret, downwardAPI and projected volumes. hostPath and
//! hostPath/local-backed persistentVolumeClaim volumes are the node's own paths.
//!
//! configMap, secret, downwardAPI and projected volumes are written with the atomic
//! writer and re-rendered every [`REFRESH`] (upstream re-syncs with the kubelet's
//! sync period, a minute, through a TTL cache), so updates show up in running
//! containers. A volume that cannot be set up keeps the pod in ContainerCreating,
//! is retried every [`RETRY`], and is reported as a FailedMount event.

mod atomic;
mod claim;
mod downward;
mod empty_dir;
mod failed_mount;
mod host_path;
mod mounts;
mod ownership;
mod payload;
mod token;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Volume};

use crate::Config;
pub use mounts::container_mounts;
use ownership::FsGroup;

/// How often API-data volumes are re-rendered.
pub const REFRESH: Duration = Duration::from_secs(10);
/// How soon a volume that failed to set up is tried again.
pub const RETRY: Duration = Duration::from_secs(2);
/// A FailedMount event is repeated at most this often for the same message.
const EVENT_EVERY: Duration = Duration::from_secs(60);

/// A volume as containers mount it.
#[derive(Clone, Debug)]
pub struct Mounted {
    pub path: PathBuf,
    /// configMap, secret, downwardAPI and projected volumes are always read-only.
    pub read_only: bool,
}

/// A volume that could not be set up.
#[derive(Clone, Debug, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume {volume:?} : {message}")]
pub struct VolumeError {
    pub volume: String,
    pub message: String,
}

/// `<data>/kubelet/pods/<uid>`, the pod's own directory.
pub fn pod_dir(config: &Config, uid: &str) -> PathBuf {
    config.data_dir.join("kubelet/pods").join(uid)
}

fn volume_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

/// One pod's volumes.
#[derive(Default)]
pub struct PodVolumes {
    mounted: HashMap<String, Mounted>,
    ready: bool,
    next_sync: Option<Instant>,
    tokens: token::Tokens,
    last_event: Option<(String, Instant)>,
}

impl PodVolumes {
    /// Whether every volume of the pod is set up.
    pub fn ready(&self) -> bool {
        self.ready
    }

    pub fn mounted(&self) -> &HashMap<String, Mounted> {
        &self.mounted
    }

    /// Sets up the pod's volumes, and re-renders the API-data ones when due; does
    /// nothing before then. A failure is also reported as a FailedMount event.
    pub async fn sync(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
    ) -> Result<(), VolumeError> {
        if self.next_sync.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let result = self.set_up_all(client, config, pod).await;
        self.next_sync = Some(Instant::now() + if result.is_ok() { REFRESH } else { RETRY });
        match &result {
            Ok(()) => self.ready = true,
            Err(e) => self.event(client, config, pod, &e.to_string()).await,
        }
        result
    }

    async fn set_up_all(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
    ) -> Result<(), VolumeError> {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let dir = pod_dir(config, uid);
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_deref())
            .unwrap_or_default();
        for v in volumes {
            let static_kind = v.empty_dir.is_some()
                || v.host_path.is_some()
                || v.persistent_volume_claim.is_some();
            if static_kind && self.mounted.contains_key(&v.name) {
                continue;
            }
            let mounted = self
                .set_up(client, config, pod, &dir, v)
                .await
                .map_err(|message| VolumeError {
                    volume: v.name.clone(),
                    message,
                })?;
            self.mounted.insert(v.name.clone(), mounted);
        }
        Ok(())
    }

    async fn set_up(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
        dir: &Path,
        v: &Volume,
    ) -> Result<Mounted, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let fs_group = FsGroup::of(pod);
        let rw = |path: PathBuf| Mounted {
            path,
            read_only: false,
        };
        let own = |path: &Path, read_only: bool, honour_policy: bool| match fs_group {
            Some(g) => g
                .apply(path, read_only, honour_policy)
                .map_err(|e| format!("set ownership of {}: {e}", path.display())),
            None => Ok(()),
        };
        if let Some(e) = &v.empty_dir {
            let path = volume_dir(dir, "empty-dir", &v.name);
            empty_dir::set_up(&path, e)?;
            own(&path, false, false)?;
            return Ok(rw(path));
        }
        if let Some(h) = &v.host_path {
            host_path::check_type(Path::new(&h.path), h.type_.as_deref().unwrap_or_default())?;
            return Ok(rw(PathBuf::from(&h.path)));
        }
        if let Some(c) = &v.persistent_volume_claim {
            let claimed = claim::claimed(client, ns, &c.claim_name).await?;
            let read_only = c.read_only == Some(true);
            // Upstream's local plugin changes ownership of writable mounts only.
            if claimed.local && !read_only {
                own(&claimed.path, false, true)?;
            }
            return Ok(Mounted {
                path: claimed.path,
                read_only,
            });
        }
        let (plugin, files) = if let Some(c) = &v.config_map {
            let optional = c.optional == Some(true);
            let data = payload::config_map(client, ns, &c.name, optional).await?;
            let mode = c.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let items = c.items.as_deref().unwrap_or_default();
            let files = payload::make(payload::Kind::ConfigMap, items, &data, mode, optional)?;
            ("configmap", files)
        } else if let Some(s) = &v.secret {
            let optional = s.optional == Some(true);
            let name = s.secret_name.as_deref().unwrap_or_default();
            let data = payload::secret(client, ns, name, optional).await?;
            let mode = s.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let items = s.items.as_deref().unwrap_or_default();
            let files = payload::make(payload::Kind::Secret, items, &data, mode, optional)?;
            ("secret", files)
        } else if let Some(d) = &v.downward_api {
            let mode = d.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let items = d.items.as_deref().unwrap_or_default();
            (
                "downward-api",
                downward::make(items, pod, mode, allocatable(config))?,
            )
        } else if let Some(p) = &v.projected {
            ("projected", self.projected(client, config, pod, p).await?)
        } else {
            return Err("volume type not supported by this kubelet".into());
        };
        let mut files = files;
        if fs_group.is_some() {
            files
                .values_mut()
                .for_each(|f| f.mode = ownership::payload_mode(f.mode));
        }
        let path = volume_dir(dir, plugin, &v.name);
        std::fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        let changed =
            atomic::write(&path, &files).map_err(|e| format!("write {}: {e}", path.display()))?;
        // A new version is a new directory of root's; after a kubelet restart the first
        // render walks too, in case the last one stopped half way.
        if changed || !self.mounted.contains_key(&v.name) {
            own(&path, true, false)?;
        }
        Ok(Mounted {
            path,
            read_only: true,
        })
    }

    /// A projected volume's sources merged into one payload; errors are aggregated as
    /// upstream's (`[a, b]` when more than one).
    async fn projected(
        &mut self,
        client: &kube::Client,
        config: &Config,
        pod: &Pod,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    ) -> Result<atomic::Payload, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mode = p.default_mode.unwrap_or(payload::DEFAULT_MODE);
        let mut files = atomic::Payload::new();
        let mut errors: Vec<String> = Vec::new();
        for src in p.sources.iter().flatten() {
            let part = if let Some(c) = &src.config_map {
                let optional = c.optional == Some(true);
                let items = c.items.as_deref().unwrap_or_default();
                match payload::config_map(client, ns, &c.name, optional).await {
                    Ok(data) => {
                        payload::make(payload::Kind::ConfigMap, items, &data, mode, optional)
                    }
                    Err(e) => Err(e),
                }
            } else if let Some(s) = &src.secret {
                let optional = s.optional == Some(true);
                let items = s.items.as_deref().unwrap_or_default();
                match payload::secret(client, ns, &s.name, optional).await {
                    Ok(data) => payload::make(payload::Kind::Secret, items, &data, mode, optional),
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &src.downward_api {
                let items = d.items.as_deref().unwrap_or_default();
                downward::make(items, pod, mode, allocatable(config))
            } else if let Some(t) = &src.service_account_token {
                let expiration = t.expiration_seconds.unwrap_or(3600);
                // As upstream: 0600 under an fsGroup (the ownership change then adds
                // group read) or when every container runs as one user, who owns it.
                let owner = ownership::fs_user(pod);
                let mode = match FsGroup::of(pod).is_some() || owner.is_some() {
                    true => 0o600,
                    false => mode,
                };
                self.tokens
                    .get(client, pod, t.audience.as_deref(), expiration)
                    .await
                    .map(|token| {
                        let file = atomic::File {
                            data: token.into_bytes(),
                            mode: mode as u32,
                            owner,
                        };
                        atomic::Payload::from([(t.path.clone(), file)])
                    })
            } else {
                Err("projected source not supported by this kubelet".into())
            };
            match part {
                Ok(part) => files.extend(part),
                Err(e) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(files),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        }
    }

    /// A FailedMount event on the pod, at most once a minute for the same message.
    async fn event(&mut self, client: &kube::Client, config: &Config, pod: &Pod, message: &str) {
        if let Some((last, at)) = &self.last_event
            && last == message
            && at.elapsed() < EVENT_EVERY
        {
            return;
        }
        self.last_event = Some((message.to_string(), Instant::now()));
        failed_mount::record(client, config, pod, message).await;
    }
}

/// Unmounts what the kubelet mounted for the pod (memory-backed emptyDirs) and removes
/// its directory.
pub fn tear_down(config: &Config, uid: &str) {
    let dir = pod_dir(config, uid);
    if !dir.exists() {
        return;
    }
    if let Err(e) = cri::mounts::unmount_all_under(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot unmount pod volumes");
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove pod volumes");
    }
}

fn allocatable(config: &Config) -> downward::Allocatable {
    downward::Allocatable {
        cpu_milli: crate::sysinfo::cpus() as i128 * 1000,
        memory: i128::from(crate::sysinfo::memory_bytes()),
        ephemeral_storage: i128::from(crate::sysinfo::filesystem(&config.data_dir).0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keeps_volumes_apart_from_logs() {
        let config = Config::new("n", "127.0.0.1".parse().unwrap(), "/data");
        let dir = pod_dir(&config, "uid-1");
        assert_eq!(dir, Path::new("/data/kubelet/pods/uid-1"));
        assert!(!dir.starts_with(config.pod_log_root()));
        assert_eq!(
            volume_dir(&dir, "empty-dir", "cache"),
            Path::new("/data/kubelet/pods/uid-1/volumes/kubernetes.io~empty-dir/cache")
        );
    }

    #[test]
    fn errors_read_like_upstream_events() {
        let e = VolumeError {
            volume: "cfg".into(),
            message: "configmap \"app\" not found".into(),
        };
        assert_eq!(
            e.to_string(),
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"app\" not found"
        );
    }
}
