//! A pod's and its containers' securityContext, as the CRI security contexts the
//! runtime applies (upstream: kuberuntime's security_context.go). Container fields
//! override the pod's; what the runtime cannot check itself (runAsNonRoot against the
//! image's user) is checked here before the container is created.

use std::collections::HashMap;
use std::path::Path;

use cri::ImageService;
use cri::v1::{
    Capability, Int64Value, LinuxContainerSecurityContext, LinuxSandboxSecurityContext,
    NamespaceOption, SecurityProfile, security_profile::ProfileType,
};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
};

/// Paths hidden from a container's /proc and /sys unless procMount is Unmasked
/// (upstream's DefaultProcMountMaskedPaths).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths of /proc mounted read-only unless procMount is Unmasked.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container's context with the pod's defaults filled in (upstream's
/// determineEffectiveSecurityContext).
pub fn effective(pod: &Pod, c: &Container) -> SecurityContext {
    let mut sc = c.security_context.clone().unwrap_or_default();
    if let Some(p) = pod_context(pod) {
        sc.run_as_user = sc.run_as_user.or(p.run_as_user);
        sc.run_as_group = sc.run_as_group.or(p.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(p.run_as_non_root);
        sc.se_linux_options = sc.se_linux_options.or_else(|| p.se_linux_options.clone());
        sc.seccomp_profile = sc.seccomp_profile.or_else(|| p.seccomp_profile.clone());
    }
    sc
}

fn pod_context(pod: &Pod) -> Option<&PodSecurityContext> {
    pod.spec.as_ref()?.security_context.as_ref()
}

/// fsGroup and supplementalGroups: every container of the pod is in them.
fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let Some(p) = pod_context(pod) else {
        return Vec::new();
    };
    let mut groups: Vec<i64> = p.fs_group.into_iter().collect();
    groups.extend(p.supplemental_groups.iter().flatten());
    groups.dedup();
    groups
}

/// Upstream's kubelet runs containers Unconfined unless a profile is asked for
/// (its `--seccomp-default` is off by default); privileged containers always are.
fn seccomp(profile: Option<&SeccompProfile>, privileged: bool, root: &Path) -> SecurityProfile {
    let unconfined = SecurityProfile {
        profile_type: ProfileType::Unconfined as i32,
        ..Default::default()
    };
    match profile {
        _ if privileged => unconfined,
        Some(p) if p.type_ == "RuntimeDefault" => SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            ..Default::default()
        },
        Some(p) if p.type_ == "Localhost" => SecurityProfile {
            profile_type: ProfileType::Localhost as i32,
            localhost_ref: root
                .join(p.localhost_profile.as_deref().unwrap_or_default())
                .display()
                .to_string(),
        },
        _ => unconfined,
    }
}

fn int64(v: Option<i64>) -> Option<Int64Value> {
    v.map(|value| Int64Value { value })
}

/// The container's CRI security context; `seccomp_root` holds Localhost profiles.
pub fn container(
    pod: &Pod,
    c: &Container,
    namespaces: NamespaceOption,
    seccomp_root: &Path,
) -> LinuxContainerSecurityContext {
    let sc = effective(pod, c);
    let privileged = sc.privileged == Some(true);
    let caps = sc.capabilities.as_ref();
    let names = |v: Option<&Vec<String>>| v.cloned().unwrap_or_default();
    let unmasked = sc.proc_mount.as_deref() == Some("Unmasked");
    let paths = |p: &[&str]| {
        if unmasked {
            Vec::new()
        } else {
            p.iter().map(|s| s.to_string()).collect()
        }
    };
    LinuxContainerSecurityContext {
        capabilities: caps.map(|c| Capability {
            add_capabilities: names(c.add.as_ref()),
            drop_capabilities: names(c.drop.as_ref()),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(namespaces),
        run_as_user: int64(sc.run_as_user),
        run_as_group: int64(sc.run_as_group),
        readonly_rootfs: sc.read_only_root_filesystem == Some(true),
        supplemental_groups: supplemental_groups(pod),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        masked_paths: paths(MASKED_PATHS),
        readonly_paths: paths(READONLY_PATHS),
        seccomp: Some(seccomp(
            sc.seccomp_profile.as_ref(),
            privileged,
            seccomp_root,
        )),
        ..Default::default()
    }
}

/// The sandbox's CRI security context: privileged if any container is, as upstream.
pub fn sandbox(
    pod: &Pod,
    namespaces: NamespaceOption,
    seccomp_root: &Path,
) -> LinuxSandboxSecurityContext {
    let spec = pod.spec.as_ref();
    let all = spec
        .into_iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers));
    let privileged = all
        .clone()
        .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));
    let p = pod_context(pod);
    LinuxSandboxSecurityContext {
        namespace_options: Some(namespaces),
        run_as_user: int64(p.and_then(|p| p.run_as_user)),
        run_as_group: int64(p.and_then(|p| p.run_as_group)),
        supplemental_groups: supplemental_groups(pod),
        privileged,
        seccomp: Some(seccomp(
            p.and_then(|p| p.seccomp_profile.as_ref()),
            privileged,
            seccomp_root,
        )),
        ..Default::default()
    }
}

/// The pod's sysctls, set in the sandbox's namespaces.
pub fn sysctls(pod: &Pod) -> HashMap<String, String> {
    pod_context(pod)
        .and_then(|p| p.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect()
}

/// With runAsNonRoot, refuses a container that would run as root: by its runAsUser,
/// or else by its image's user. The message is upstream's (a CreateContainerConfigError).
pub async fn verify_non_root(
    images: &dyn ImageService,
    pod: &Pod,
    c: &Container,
    image_ref: &str,
) -> Result<(), String> {
    let sc = effective(pod, c);
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let pod = super::lifecycle::pod_ref(pod);
    let name = &c.name;
    if let Some(uid) = sc.run_as_user {
        return match uid {
            0 => Err(format!(
                "container's runAsUser breaks non-root policy (pod: \"{pod}\", container: {name})"
            )),
            _ => Ok(()),
        };
    }
    let image = images
        .image_status(cri::image_spec(image_ref))
        .await
        .map_err(|e| format!("cannot inspect the image of container {name}: {e}"))?;
    let (uid, username) = image
        .map(|i| (i.uid.map(|u| u.value), i.username))
        .unwrap_or_default();
    match (uid, username.as_str()) {
        (Some(0), _) | (None, "" | "root") => Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{pod}\", container: {name})"
        )),
        (Some(_), _) => Ok(()),
        (None, user) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: \"{pod}\", container: {name})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn container_fields_override_the_pods() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                "supplementalGroups": [4000], "runAsNonRoot": true},
            "containers": [{"name": "c", "securityContext": {"runAsUser": 1001,
                "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}]}}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let sc = container(&p, c, NamespaceOption::default(), Path::new("/s"));
        assert_eq!(sc.run_as_user, Some(Int64Value { value: 1001 }));
        assert_eq!(sc.run_as_group, Some(Int64Value { value: 3000 }));
        assert_eq!(sc.supplemental_groups, vec![2000, 4000]);
        assert!(sc.readonly_rootfs && sc.no_new_privs && !sc.privileged);
        let caps = sc.capabilities.unwrap();
        assert_eq!(
            (caps.add_capabilities, caps.drop_capabilities),
            (vec!["NET_ADMIN".into()], vec!["ALL".into()])
        );
        assert_eq!(sc.masked_paths.len(), MASKED_PATHS.len());
        assert_eq!(
            sc.seccomp.unwrap().profile_type,
            ProfileType::Unconfined as i32
        );
    }

    #[test]
    fn privileged_container_makes_a_privileged_sandbox() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x.json"}},
            "containers": [{"name": "a"}, {"name": "b", "securityContext": {"privileged": true}}]}}));
        let s = sandbox(&p, NamespaceOption::default(), Path::new("/s"));
        assert!(s.privileged);
        assert_eq!(
            s.seccomp.unwrap().profile_type,
            ProfileType::Unconfined as i32
        );
        let a = &p.spec.as_ref().unwrap().containers[0];
        let sc = container(&p, a, NamespaceOption::default(), Path::new("/s"));
        let prof = sc.seccomp.unwrap();
        assert_eq!(
            (prof.profile_type, prof.localhost_ref.as_str()),
            (ProfileType::Localhost as i32, "/s/x.json")
        );
    }

    #[test]
    fn unmasked_proc_mount_has_no_masked_paths() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "securityContext": {"procMount": "Unmasked"}}]}}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let sc = container(&p, c, NamespaceOption::default(), Path::new("/s"));
        assert!(sc.masked_paths.is_empty() && sc.readonly_paths.is_empty());
    }
}
