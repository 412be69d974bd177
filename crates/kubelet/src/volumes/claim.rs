//! persistentVolumeClaim volumes: the node path of the bound PV (hostPath or local
//! PVs only, the kinds a single-node kubelet can serve without a volume plugin).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Api;

use super::host_path;

/// A bound claim's volume on this node.
pub struct Claimed {
    pub path: PathBuf,
    /// A local PV, whose ownership the kubelet manages (fsGroup) as upstream's local
    /// plugin does; hostPath PVs are the node's own paths and left as they are.
    pub local: bool,
}

/// The node path of a bound claim's volume (hostPath or local PVs only).
pub async fn claimed(client: &kube::Client, ns: &str, claim: &str) -> Result<Claimed, String> {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
        .get_opt(claim)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} not found"))?;
    let phase = pvc.status.and_then(|s| s.phase).unwrap_or_default();
    let volume = pvc.spec.and_then(|s| s.volume_name).unwrap_or_default();
    if phase != "Bound" || volume.is_empty() {
        return Err(format!(
            "PVC {ns}/{claim} has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({volume:?})"
        ));
    }
    let pv = Api::<PersistentVolume>::all(client.clone())
        .get_opt(&volume)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("persistentvolume {volume:?} not found"))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(h) = spec.host_path {
        host_path::check_type(Path::new(&h.path), h.type_.as_deref().unwrap_or_default())?;
        return Ok(Claimed {
            path: PathBuf::from(h.path),
            local: false,
        });
    }
    if let Some(l) = spec.local {
        return Ok(Claimed {
            path: PathBuf::from(l.path),
            local: true,
        });
    }
    Err(format!(
        "persistentvolume {volume:?} is neither hostPath nor local; this kubelet mounts no other kinds"
    ))
}
