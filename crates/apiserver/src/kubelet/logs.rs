//! `GET pods/{name}/log`: checked against the pod's status as the kubelet checks it
//! (so the usual "waiting to start" errors read as upstream's), then streamed from
//! the kubelet's `/containerLogs`.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::{container_name, encode, kubelet_error, query_param, target};
use crate::error::{ApiError, Result};
use crate::handlers::Call;

pub async fn pod_log(call: Call) -> Result<Response> {
    let (client, t) = target(&call).await?;
    let container = container_name(&t.pod, query_param(&call, "container").as_deref())?;
    let previous = query_param(&call, "previous").is_some_and(|v| v == "true" || v == "1");
    check_status(&t.pod, &container, previous)?;
    let path = format!(
        "/containerLogs/{}/{}/{}?{}",
        encode(call.ns().unwrap_or_default()),
        encode(call.name()),
        encode(&container),
        call.parts.uri.query().unwrap_or_default()
    );
    let resp = client
        .send(t.kubelet, http::Request::builder(), &path)
        .await?;
    let status = resp.status();
    if status != StatusCode::OK {
        return Err(kubelet_error(status, resp.into_body()).await);
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Body::new(resp.into_body()))
        .expect("valid response parts"))
}

/// Upstream kubelet's checks of a container's status before it serves logs.
fn check_status(pod: &Value, container: &str, previous: bool) -> Result<()> {
    let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str);
    let pod_name = pod_name.unwrap_or_default();
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/status/{f}"))?.as_array())
        .flatten()
        .find(|s| s["name"] == container);
    let Some(status) = status else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: ContainerCreating"
        )));
    };
    let last_terminated = status.pointer("/lastState/terminated").is_some();
    if previous {
        if !last_terminated {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
            )));
        }
        return Ok(());
    }
    if let Some(waiting) = status.pointer("/state/waiting")
        && !last_terminated
    {
        let reason = waiting["reason"].as_str().unwrap_or("ContainerCreating");
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(r: Result<()>) -> String {
        r.unwrap_err().status()["message"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn waiting_and_previous_errors_read_as_upstream() {
        let pod = json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [
            {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}, "lastState": {}}]}});
        assert_eq!(
            message(check_status(&pod, "c", false)),
            "container \"c\" in pod \"p\" is waiting to start: ImagePullBackOff"
        );
        assert_eq!(
            message(check_status(&pod, "c", true)),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        let crashed = json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [
            {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1}}}]}});
        assert!(check_status(&crashed, "c", false).is_ok());
        assert!(check_status(&crashed, "c", true).is_ok());
    }
}
