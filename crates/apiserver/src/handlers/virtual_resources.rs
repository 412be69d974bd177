//! Resources that are computed rather than stored: componentstatuses, the
//! authentication and authorization reviews, and core/v1 bindings.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::Call;
use super::access_reviews;
use super::respond::{self, IncludeObject};
use crate::auth::UserInfo;
use crate::error::{ApiError, Result};
use crate::negotiate;
use crate::registry::ListPage;
use crate::state::ApiState;
use api::ResourceInfo;

pub async fn handle(mut call: Call) -> Result<Response> {
    let verb = call.ri.verb.clone();
    if !call.info.has_verb(&verb) {
        return Err(ApiError::method_not_supported(&call.info, &verb));
    }
    if call.info.group == "metrics.k8s.io" {
        return resource_metrics(call).await;
    }
    match (call.info.plural.as_str(), verb.as_str()) {
        ("componentstatuses", "get") => {
            let obj = component_status(&call.state, &call.info, call.name()).await?;
            Ok(respond::object(
                StatusCode::OK,
                &call.info,
                &obj,
                call.output,
                IncludeObject::Metadata,
            ))
        }
        ("componentstatuses", "list") => {
            let mut items = Vec::new();
            for name in ["scheduler", "controller-manager", "etcd-0"] {
                items.push(component_status(&call.state, &call.info, name).await?);
            }
            let page = ListPage {
                items,
                ..Default::default()
            };
            Ok(respond::list(
                &call.info,
                page,
                call.output,
                IncludeObject::Metadata,
            ))
        }
        ("bindings", "create") => {
            let body = call.body_bytes().await?;
            let binding = negotiate::decode_body(&call.parts.headers, &body)?;
            let pod = binding
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let ns = call.ri.namespace.clone();
            super::subresources::bind_pod(
                &call.state,
                ns.as_deref(),
                &pod,
                &binding,
                &call.ctx.user,
            )
            .await
        }
        (_, "create") => {
            let body = call.body_bytes().await?;
            let review = negotiate::decode_body(&call.parts.headers, &body)?;
            let answered = review_response(&call, review)?;
            Ok(respond::json(StatusCode::CREATED, &answered))
        }
        _ => Err(ApiError::method_not_supported(&call.info, &verb)),
    }
}

async fn component_status(state: &ApiState, info: &ResourceInfo, name: &str) -> Result<Value> {
    let health = match name {
        "etcd-0" => state
            .registry
            .store
            .current_revision()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "scheduler" | "controller-manager" => state.components.status(name),
        _ => return Err(ApiError::not_found(info, name)),
    };
    let condition = match health {
        Ok(()) => {
            let message = if name == "etcd-0" {
                r#"{"health":"true","reason":""}"#
            } else {
                "ok"
            };
            json!({"type": "Healthy", "status": "True", "message": message})
        }
        Err(e) => json!({"type": "Healthy", "status": "False", "error": e}),
    };
    Ok(json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    }))
}

fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.username, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

/// Fills in the status of a review, as upstream answers it.
fn review_response(call: &Call, mut review: Value) -> Result<Value> {
    let info = &call.info;
    review["apiVersion"] = json!(info.api_version());
    review["kind"] = json!(info.kind);
    let user = &call.ctx.user;
    match info.plural.as_str() {
        "selfsubjectreviews" => {
            review["metadata"] = json!({"creationTimestamp": null});
            review["status"] = json!({"userInfo": user_json(user)});
        }
        "tokenreviews" => {
            let token = review
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let found = call.state.authenticator.authenticate_token(token);
            review["status"] = match found {
                Some(u) => {
                    json!({"authenticated": true, "user": user_json(&u), "audiences": review.pointer("/spec/audiences").cloned().unwrap_or(json!([]))})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
        }
        "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let subject = if info.plural == "selfsubjectaccessreviews" {
                user.clone()
            } else {
                access_reviews::spec_user(&review["spec"])
            };
            let path_ns = (info.plural == "localsubjectaccessreviews")
                .then(|| call.ri.namespace.as_deref().unwrap_or_default());
            review["status"] = access_reviews::access_review(
                &*call.state.authorizer,
                &subject,
                &review["spec"],
                path_ns,
            )?;
        }
        "selfsubjectrulesreviews" => {
            let ns = review
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            review["status"] = access_reviews::rules_review(&*call.state.authorizer, user, &ns);
        }
        other => {
            return Err(ApiError::unavailable(format!(
                "{other} is not available on this server"
            )));
        }
    }
    Ok(review)
}

/// NodeMetrics and PodMetrics (`kubectl top`), read from the kubelets.
async fn resource_metrics(call: Call) -> Result<Response> {
    let (labels, _) = super::read::selectors(&call.info, &call.query)?;
    let name = call.ri.name.clone();
    let page = crate::kubelet::metrics(
        &call.state,
        &call.info.plural,
        call.ns(),
        name.as_deref(),
        &labels,
    )
    .await?;
    match name {
        None => Ok(respond::list(
            &call.info,
            page,
            call.output,
            IncludeObject::Metadata,
        )),
        Some(name) => match page.items.into_iter().next() {
            Some(obj) => Ok(respond::object(
                StatusCode::OK,
                &call.info,
                &obj,
                call.output,
                IncludeObject::Metadata,
            )),
            None => Err(ApiError::not_found(&call.info, &name)),
        },
    }
}
