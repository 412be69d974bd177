//! create, update, patch, delete and deletecollection.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use api::ResourceInfo;

use super::Call;
use super::read::selectors;
use super::respond::{self, IncludeObject};
use crate::error::{ApiError, Result};
use crate::field_validation::{self, Mode};
use crate::negotiate;
use crate::patch::{self, PatchType};
use crate::registry::{DeleteOptions, ListParams, UpdateMode};

/// Unknown fields of a request body, per `?fieldValidation=`: an error (Strict) or
/// the warnings to send (Warn).
fn field_warnings(call: &Call, body: &Value) -> Result<Vec<String>> {
    let mode = Mode::from_query(&call.query)?;
    if mode == Mode::Ignore {
        return Ok(Vec::new());
    }
    // Custom resources: the fields their schema would prune.
    let unknown = if call.info.custom {
        call.info.strategy.unknown_fields(body)
    } else {
        field_validation::unknown_fields(
            &call.info.group,
            &call.info.version,
            &call.info.kind,
            body,
        )
    };
    field_validation::check(mode, unknown)
}

/// Adds `Warning: 299 - "…"` headers, as upstream reports warnings.
fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - {}", serde_json::Value::String(w.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

pub async fn create(mut call: Call) -> Result<Response> {
    let body = call.body_bytes().await?;
    let obj = negotiate::decode_body(&call.parts.headers, &body)?;
    let warnings = field_warnings(&call, &obj)?;
    let created = call
        .state
        .registry
        .create(&call.info, call.ns(), obj, &call.ctx)
        .await?;
    Ok(with_warnings(
        respond::object(
            StatusCode::CREATED,
            &call.info,
            &created,
            call.output,
            IncludeObject::Metadata,
        ),
        &warnings,
    ))
}

pub async fn update(call: Call) -> Result<Response> {
    update_as(call, UpdateMode::Main).await
}

pub async fn update_as(mut call: Call, mode: UpdateMode) -> Result<Response> {
    let body = call.body_bytes().await?;
    let obj = negotiate::decode_body(&call.parts.headers, &body)?;
    let warnings = field_warnings(&call, &obj)?;
    let name = call.name().to_string();
    let updated = call
        .state
        .registry
        .update(&call.info, call.ns(), &name, obj, mode, &call.ctx)
        .await?;
    let code = if updated.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_warnings(
        respond::object(
            code,
            &call.info,
            &updated.object,
            call.output,
            IncludeObject::Metadata,
        ),
        &warnings,
    ))
}

pub async fn patch(call: Call) -> Result<Response> {
    patch_as(call, UpdateMode::Main).await
}

pub async fn patch_as(mut call: Call, mode: UpdateMode) -> Result<Response> {
    let ct = negotiate::content_type(&call.parts.headers);
    let kind = PatchType::from_content_type(&ct).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
        ))
    })?;
    let body = call.body_bytes().await?;
    let patch_doc = if kind == PatchType::Apply {
        negotiate::decode_yaml(&body)?
    } else {
        negotiate::decode_json(&body)?
    };
    let warnings = if kind == PatchType::Json {
        Vec::new()
    } else {
        field_warnings(&call, &patch_doc)?
    };
    let name = call.name().to_string();
    let info = call.info.clone();
    let (obj, created) = if kind == PatchType::Apply {
        crate::apply::server_side_apply(
            &call.state.registry,
            &info,
            call.ns(),
            &name,
            patch_doc,
            mode,
            &call.ctx,
            call.query.flag("force")?,
        )
        .await?
    } else {
        let patched = call
            .state
            .registry
            .guaranteed_update(&info, call.ns(), &name, mode, &call.ctx, |current| {
                patch::apply(kind, &info, current, &patch_doc)
            })
            .await?;
        (patched, false)
    };
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_warnings(
        respond::object(code, &call.info, &obj, call.output, IncludeObject::Metadata),
        &warnings,
    ))
}

/// DeleteOptions from the body (if any) overlaid by the query.
async fn delete_options(call: &mut Call) -> Result<DeleteOptions> {
    let body = call.body_bytes().await?;
    let mut opts: DeleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_value(negotiate::decode_body(&call.parts.headers, &body)?)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(g) = call.query.int("gracePeriodSeconds")? {
        opts.grace_period_seconds = Some(g);
    }
    if let Some(p) = call.query.value("propagationPolicy") {
        opts.propagation_policy = Some(p.to_string());
    }
    if let Some(o) = call.query.optional_flag("orphanDependents")? {
        opts.orphan_dependents = Some(o);
    }
    if opts.dry_run.iter().any(|d| d == "All") {
        call.ctx.dry_run = true;
    }
    Ok(opts)
}

/// Resources whose delete answers with the object rather than a Status (upstream's
/// `ReturnDeletedObject`).
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    let core = info.group.is_empty()
        && matches!(
            info.plural.as_str(),
            "pods"
                | "services"
                | "serviceaccounts"
                | "namespaces"
                | "persistentvolumes"
                | "persistentvolumeclaims"
        );
    core || (info.group == "storage.k8s.io" && info.plural == "storageclasses") || info.custom
}

pub async fn delete(mut call: Call) -> Result<Response> {
    let opts = delete_options(&mut call).await?;
    let name = call.name().to_string();
    let deleted = call
        .state
        .registry
        .delete(&call.info, call.ns(), &name, &opts, &call.ctx)
        .await?;
    if deleted.immediately && !returns_deleted_object(&call.info) {
        return Ok(respond::json(
            StatusCode::OK,
            &respond::delete_status(&call.info, &deleted.obj),
        ));
    }
    let code = if !deleted.immediately && opts.orphan_dependents == Some(false) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(respond::object(
        code,
        &call.info,
        &deleted.obj,
        call.output,
        IncludeObject::Metadata,
    ))
}

pub async fn delete_collection(mut call: Call) -> Result<Response> {
    let opts = delete_options(&mut call).await?;
    let (labels, fields) = selectors(&call.info, &call.query)?;
    let params = ListParams {
        labels,
        fields,
        ..Default::default()
    };
    let page = call
        .state
        .registry
        .list(&call.info, call.ns(), &params)
        .await?;
    let mut items: Vec<Value> = Vec::with_capacity(page.items.len());
    for obj in page.items {
        let name = api::meta::name(&obj).unwrap_or_default().to_string();
        let ns = api::meta::namespace(&obj).map(str::to_string);
        match call
            .state
            .registry
            .delete(&call.info, ns.as_deref(), &name, &opts, &call.ctx)
            .await
        {
            Ok(d) => items.push(d.obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": call.info.list_kind(),
        "apiVersion": call.info.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
        "items": items,
    });
    Ok(respond::json(StatusCode::OK, &list))
}
