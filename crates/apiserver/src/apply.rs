//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): the applied
//! configuration is merged into the object (or creates it), fields the manager
//! stopped applying are removed, and changes to fields other managers own are
//! conflicts unless forced (see [`crate::managedfields::apply`]). Returns the object
//! and whether the apply created it.

use serde_json::Value;

use api::ResourceInfo;

use crate::error::{ApiError, Result};
use crate::managedfields::apply::{self as ssa, Request};
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
    force: bool,
) -> Result<(Value, bool)> {
    let Some(manager) = ctx.field_manager.as_deref().filter(|m| !m.is_empty()) else {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    };
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
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let req = Request {
        info,
        manager,
        subresource: ctx.subresource(),
        force,
    };
    let inner = Context {
        applying: true,
        ..ctx.clone()
    };
    if registry.try_get(info, ns, name).await?.is_none() && mode == UpdateMode::Main {
        let mut obj = ssa::apply(&req, None, &applied)?.unwrap_or(applied);
        api::meta::set_str(&mut obj, "name", name);
        return Ok((registry.create(info, ns, obj, &inner).await?, true));
    }
    let updated = registry
        .guaranteed_update(info, ns, name, mode, &inner, |current| {
            Ok(ssa::apply(&req, Some(current), &applied)?.unwrap_or_else(|| current.clone()))
        })
        .await?;
    Ok((updated, false))
}
