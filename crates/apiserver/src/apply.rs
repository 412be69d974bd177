//! Server-side apply (`PATCH` with `application/apply-patch+yaml`).
//!
//! First version: the applied configuration creates the object when it is missing and
//! is merged into it otherwise, with strategic-merge semantics. Field ownership
//! (managedFields, conflicts, removal of fields a manager stopped applying) is not
//! tracked yet.

use serde_json::Value;

use api::ResourceInfo;

use crate::error::{ApiError, Result};
use crate::patch::strategic;
use crate::registry::{Context, Registry, UpdateMode};

#[allow(clippy::too_many_arguments)]
pub async fn server_side_apply(
    registry: &Registry,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    applied: Value,
    mode: UpdateMode,
    ctx: &Context,
    _force: bool,
) -> Result<Value> {
    if ctx.field_manager.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    if !applied.is_object() {
        return Err(ApiError::bad_request(
            "the applied configuration must be an object",
        ));
    }
    if let Some(n) = api::meta::name(&applied)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    if registry.try_get(info, ns, name).await?.is_none() && mode == UpdateMode::Main {
        let mut obj = applied.clone();
        api::meta::set_str(&mut obj, "name", name);
        return registry.create(info, ns, obj, ctx).await;
    }
    registry
        .guaranteed_update(info, ns, name, mode, ctx, |current| {
            strategic::merge(info, current, &applied)
        })
        .await
}
