//! Images per imagePullPolicy. No registry is reachable on these nodes, so a pull
//! only ever succeeds against a local mirror; what matters is reporting upstream's
//! reasons and messages when an image is missing.

use std::time::Duration;

use cri::ImageService;
use k8s_openapi::api::core::v1::Container;

/// A pull cannot succeed here (no registry); don't let a hanging one stall the pod.
const PULL_TIMEOUT: Duration = Duration::from_secs(30);

/// Resolves the image per imagePullPolicy; Err is (reason, message) as upstream.
pub async fn resolve(
    images: &dyn ImageService,
    c: &Container,
    prev_reason: Option<&str>,
) -> Result<String, (String, String)> {
    let image = c.image.clone().unwrap_or_default();
    let present = images.image_status(cri::image_spec(&image)).await;
    let present = present.map_err(|e| ("ErrImagePull".to_string(), e.to_string()))?;
    // Present images are used even under Always: no registry is reachable to
    // re-check them (k3s's airgap images behave the same).
    if let Some(img) = present {
        return Ok(img.id);
    }
    if c.image_pull_policy.as_deref() == Some("Never") {
        let m = format!("Container image \"{image}\" is not present with pull policy of Never");
        return Err(("ErrImageNeverPull".into(), m));
    }
    if matches!(prev_reason, Some("ErrImagePull" | "ImagePullBackOff")) {
        return Err((
            "ImagePullBackOff".into(),
            format!("Back-off pulling image \"{image}\""),
        ));
    }
    let pull = images.pull_image(cri::image_spec(&image), None, None);
    match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err((
            "ErrImagePull".into(),
            format!("Failed to pull image \"{image}\": {e}"),
        )),
        Err(_) => Err((
            "ErrImagePull".into(),
            format!("Failed to pull image \"{image}\": timed out"),
        )),
    }
}
