//! Lifecycle hooks (postStart, preStop) as upstream's handler runner: exec through
//! CRI, httpGet (any answer is success; only a failed request fails the hook), sleep.

use std::time::Duration;

use k8s_openapi::api::core::v1::{LifecycleHandler, Pod};

use super::probe::action::{self, Target};

/// Upstream's format.Pod: `name_namespace(uid)`.
pub fn pod_ref(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{}_{}({})",
        m.name.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    )
}

/// Runs the hook, for at most `limit`; on failure, upstream's event message.
pub async fn run(
    h: &LifecycleHandler,
    t: &Target,
    pod: &Pod,
    limit: Duration,
) -> Result<(), String> {
    let c = &t.container.name;
    let pod = pod_ref(pod);
    if let Some(e) = &h.exec {
        let cmd = e.command.clone().unwrap_or_default();
        let r = t.runtime.exec_sync(&t.container_id, cmd.clone(), limit);
        let (error, output) = match tokio::time::timeout(limit, r).await {
            Ok(Ok(r)) if r.exit_code == 0 => return Ok(()),
            Ok(Ok(r)) => {
                let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
                let mut output = String::from_utf8_lossy(&r.stdout).into_owned();
                output.push_str(&stderr);
                let joined = cmd.join(" ");
                let code = r.exit_code;
                (
                    format!("command '{joined}' exited with {code}: {stderr}"),
                    output,
                )
            }
            Ok(Err(e)) => (e.to_string(), String::new()),
            Err(_) => (
                format!("command '{}' timed out", cmd.join(" ")),
                String::new(),
            ),
        };
        return Err(format!(
            "Exec lifecycle hook ([{}]) for Container {c:?} in Pod {pod:?} failed - error: {error}, message: {output:?}",
            cmd.join(" ")
        ));
    }
    if let Some(a) = &h.http_get {
        let path = a.path.as_deref().unwrap_or_default();
        return match action::http_status(&t.pod_ip, &t.container, a, limit).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "HTTP lifecycle hook ({path}) for Container {c:?} in Pod {pod:?} failed - error: {e}"
            )),
        };
    }
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64).min(limit)).await;
        return Ok(());
    }
    Err(format!(
        "Cannot run handler: invalid handler for Container {c:?} in Pod {pod:?}: only exec, httpGet and sleep are supported"
    ))
}
