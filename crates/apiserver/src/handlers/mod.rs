//! The resource API: `/api/...` and `/apis/...` requests, dispatched by verb and
//! subresource to the generic registry.

mod access_reviews;
mod read;
pub mod respond;
mod subresources;
mod virtual_resources;
mod write;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use api::ResourceInfo;

use crate::auth::{Attributes, Decision, UserInfo, forbidden};
use crate::discovery;
use crate::error::{ApiError, Result};
use crate::negotiate::{self, Output};
use crate::query::Query;
use crate::registry::Context;
use crate::request_info::{self, RequestInfo};
use crate::state::ApiState;

/// Upstream's limit on request bodies.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Everything a verb handler needs about its request.
pub struct Call {
    pub state: Arc<ApiState>,
    pub parts: Parts,
    pub body: Body,
    pub query: Query,
    pub ri: RequestInfo,
    pub info: Arc<ResourceInfo>,
    pub ctx: Context,
    pub output: Output,
}

impl Call {
    pub fn ns(&self) -> Option<&str> {
        if self.info.namespaced {
            self.ri.namespace.as_deref()
        } else {
            None
        }
    }

    pub fn name(&self) -> &str {
        self.ri.name.as_deref().unwrap_or_default()
    }

    /// The request body, refused past upstream's 3 MiB limit.
    pub async fn body_bytes(&mut self) -> Result<bytes::Bytes> {
        let body = std::mem::replace(&mut self.body, Body::empty());
        axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|e| {
                if std::error::Error::source(&e)
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                {
                    ApiError::too_large(MAX_BODY_BYTES)
                } else {
                    ApiError::bad_request(format!("failed to read the request body: {e}"))
                }
            })
    }
}

pub async fn api(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    match dispatch(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(state: Arc<ApiState>, req: Request) -> Result<Response> {
    let (mut parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    if let Some(resp) = discovery_response(&state, &path, &parts)? {
        return Ok(resp);
    }
    let ri = request_info::parse(&parts.method, &path, query.flag("watch")?)
        .ok_or_else(ApiError::path_not_found)?;
    let user = parts
        .extensions
        .remove::<UserInfo>()
        .unwrap_or_else(UserInfo::anonymous);
    // Before the resource is looked up, as upstream's filter: an unknown resource is
    // a 403 to whoever may not use it.
    authorize(&state, &user, &ri, &query)?;
    let info = state
        .registry
        .resources
        .get(&ri.group, &ri.version, &ri.resource)
        .ok_or_else(ApiError::path_not_found)?;
    if info.namespaced && ri.namespace.is_none() && !matches!(ri.verb.as_str(), "list" | "watch") {
        return Err(ApiError::path_not_found());
    }
    if !info.namespaced && ri.namespace.is_some() {
        return Err(ApiError::path_not_found());
    }
    let output = negotiate::output(&parts.headers)?;
    let ctx = Context {
        user,
        dry_run: query.dry_run()?,
        field_manager: query.value("fieldManager").map(str::to_string),
        agent_manager: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::managedfields::manager_from_user_agent),
        subresource: ri.subresource.clone(),
        applying: false,
    };
    let stored = api::builtin::is_stored(&info);
    let call = Call {
        state,
        parts,
        body,
        query,
        ri,
        info,
        ctx,
        output,
    };
    if !stored {
        return Box::pin(virtual_resources::handle(call)).await;
    }
    if let Some(sub) = call.ri.subresource.clone() {
        return Box::pin(subresources::handle(call, &sub)).await;
    }
    if !call.info.has_verb(&call.ri.verb) {
        return Err(ApiError::method_not_supported(&call.info, &call.ri.verb));
    }
    // Each verb's future boxed on its own: awaited in place, the largest of them (some
    // kilobytes) would size every request's future, which axum boxes and moves.
    let handler: VerbFuture = match call.ri.verb.as_str() {
        "get" => Box::pin(read::get(call)),
        "list" => Box::pin(read::list(call)),
        "watch" => Box::pin(read::watch(call)),
        "create" => Box::pin(write::create(call)),
        "update" => Box::pin(write::update(call)),
        "patch" => Box::pin(write::patch(call)),
        "delete" => Box::pin(write::delete(call)),
        "deletecollection" => Box::pin(write::delete_collection(call)),
        _ => {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    handler.await
}

type VerbFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response>> + Send>>;

fn authorize(state: &ApiState, user: &UserInfo, ri: &RequestInfo, query: &Query) -> Result<()> {
    let attrs = attributes(ri, query);
    match state.authorizer.authorize(user, &attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny(why) | Decision::NoOpinion(why) => Err(forbidden(user, &attrs, &why)),
    }
}

/// What the authorizers see of a resource request, as upstream builds it.
fn attributes(ri: &RequestInfo, query: &Query) -> Attributes {
    let mut attrs = Attributes {
        verb: ri.verb.clone(),
        group: ri.group.clone(),
        resource: ri.resource.clone(),
        subresource: ri.subresource.clone().unwrap_or_default(),
        namespace: ri.namespace.clone().unwrap_or_default(),
        name: ri.name.clone().unwrap_or_default(),
        path: None,
        field_selector: Vec::new(),
    };
    if matches!(ri.verb.as_str(), "list" | "watch" | "deletecollection") {
        // One that does not parse is refused later by the handler, with its message.
        let selector = query
            .value("fieldSelector")
            .and_then(|raw| api::selectors::FieldSelector::parse(raw).ok())
            .unwrap_or_default();
        // A list or watch of one object by `metadata.name` names it (upstream's
        // RequestInfoFactory), so authorizers can allow reading just that object.
        if ri.verb != "deletecollection"
            && attrs.name.is_empty()
            && let Some(name) = selector.single_value("metadata.name")
            && valid_path_segment(name)
        {
            attrs.name = name.to_string();
        }
        attrs.field_selector = selector.requirements().to_vec();
    }
    // A namespace is in itself, as upstream's RequestInfo has it (so a RoleBinding in
    // `dev` can allow reading namespace `dev`).
    if attrs.resource == "namespaces" && attrs.namespace.is_empty() {
        attrs.namespace = attrs.name.clone();
    }
    attrs
}

/// Upstream's `IsValidPathSegmentName`: a name that can stand in a path.
fn valid_path_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

/// Discovery documents under /api and /apis, or `None` for resource paths.
fn discovery_response(state: &ApiState, path: &str, parts: &Parts) -> Result<Option<Response>> {
    let path = path.trim_matches('/');
    // Resource paths are longer than any discovery document's.
    if path.split('/').nth(3).is_some() {
        return Ok(None);
    }
    let segs: Vec<&str> = path.split('/').collect();
    let snap = state.registry.resources.snapshot();
    let doc = match segs.as_slice() {
        ["api"] | ["apis"] => {
            if let Ok(Output::Discovery { v2beta1 }) = negotiate::output(&parts.headers) {
                let doc = discovery::aggregated(&snap, segs[0] == "api", v2beta1);
                let body = serde_json::to_vec(&doc).unwrap_or_default();
                return Ok(Some(respond::raw(
                    StatusCode::OK,
                    body,
                    discovery::aggregated_content_type(v2beta1),
                )));
            }
            if segs[0] == "api" {
                discovery::api_versions(&state.server_address)
            } else {
                discovery::api_group_list(&snap)
            }
        }
        ["api", version] => {
            discovery::resource_list(&snap, "", version).ok_or_else(ApiError::path_not_found)?
        }
        ["apis", group] => {
            discovery::api_group_doc(&snap, group).ok_or_else(ApiError::path_not_found)?
        }
        ["apis", group, version] => {
            discovery::resource_list(&snap, group, version).ok_or_else(ApiError::path_not_found)?
        }
        _ => return Ok(None),
    };
    Ok(Some(respond::json(StatusCode::OK, &doc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: http::Method, path_and_query: &str) -> Attributes {
        let (path, q) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let query = Query::parse(Some(q));
        let ri = request_info::parse(&method, path, query.flag("watch").unwrap()).unwrap();
        attributes(&ri, &query)
    }

    #[test]
    fn lists_carry_their_field_selector_and_metadata_name() {
        let a = attrs(
            http::Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3Dn1&watch=true",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "n1"));
        let a = attrs(
            http::Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,status.phase!%3DFailed",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", ""));
        assert_eq!(
            api::selectors::FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed")
                .unwrap()
                .requirements(),
            a.field_selector.as_slice()
        );
        // Neither a name that cannot stand in a path nor a deletecollection's.
        let a = attrs(
            http::Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3D..",
        );
        assert_eq!(a.name, "");
        let a = attrs(
            http::Method::DELETE,
            "/api/v1/namespaces/d/pods?fieldSelector=metadata.name%3Dweb",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("deletecollection", ""));
        assert_eq!(a.field_selector.len(), 1);
        // A get carries none.
        let a = attrs(
            http::Method::GET,
            "/api/v1/namespaces/d/pods/web?fieldSelector=spec.nodeName%3Dn1",
        );
        assert!(a.field_selector.is_empty());
    }
}
