//! Subresources: status, scale, binding, eviction, finalize; the streaming ones (log,
//! exec, attach, portforward, proxy) are proxied to the kubelet once it exists.

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use api::{ResourceInfo, meta};

use super::respond::{self, IncludeObject};
use super::{Call, write};
use crate::error::{ApiError, Result};
use crate::negotiate;
use crate::registry::{Context, DeleteOptions, UpdateMode};
use crate::state::ApiState;

pub async fn handle(call: Call, sub: &str) -> Result<Response> {
    let Some(s) = call.info.subresource(sub).cloned() else {
        return Err(ApiError::path_not_found());
    };
    let verb = call.ri.verb.as_str();
    if !s.verbs.iter().any(|v| v == verb) {
        return Err(ApiError::method_not_supported(&call.info, verb));
    }
    match (sub, verb) {
        ("status", "get") => {
            let obj = call
                .state
                .registry
                .get(&call.info, call.ns(), call.name())
                .await?;
            Ok(respond::object(
                StatusCode::OK,
                &call.info,
                &obj,
                call.output,
                IncludeObject::Metadata,
            ))
        }
        ("status", "update") => write::update_as(call, UpdateMode::Status).await,
        ("status", "patch") => write::patch_as(call, UpdateMode::Status).await,
        ("finalize", "update") => write::update_as(call, UpdateMode::Finalize).await,
        ("scale", "get") => {
            let obj = call
                .state
                .registry
                .get(&call.info, call.ns(), call.name())
                .await?;
            Ok(respond::json(StatusCode::OK, &scale_of(&call.info, &obj)))
        }
        ("scale", "update" | "patch") => update_scale(call).await,
        ("binding", "create") => bind(call).await,
        ("token", "create") => token_request(call).await,
        ("eviction", "create") => evict(call).await,
        ("log", "get") if call.info.plural == "pods" => crate::kubelet::pod_log(call).await,
        ("exec", _) if call.info.plural == "pods" => crate::kubelet::pod_exec(call).await,
        ("attach", _) if call.info.plural == "pods" => crate::kubelet::pod_attach(call).await,
        ("proxy", "get") if call.info.plural == "nodes" => crate::kubelet::node_proxy(call).await,
        ("portforward", _) if call.info.plural == "pods" => {
            crate::kubelet::pod_portforward(call).await
        }
        _ => Err(ApiError::unavailable(format!(
            "{}/{sub} is not available yet on this server",
            call.info.plural
        ))),
    }
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let m = meta::metadata(obj);
    let selector = if info.kind == "ReplicationController" {
        obj.pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|sel| {
                sel.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    } else {
        obj.pointer("/spec/selector")
            .and_then(|s| api::selectors::LabelSelector::from_label_selector(s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": m["uid"],
            "resourceVersion": m["resourceVersion"],
            "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// PUT or PATCH of `/scale`: only spec.replicas changes, with the Scale's
/// resourceVersion (if any) as precondition.
async fn update_scale(mut call: Call) -> Result<Response> {
    let body = call.body_bytes().await?;
    let patch_kind = (call.ri.verb == "patch")
        .then(|| {
            crate::patch::PatchType::from_content_type(&negotiate::content_type(
                &call.parts.headers,
            ))
        })
        .flatten();
    let doc = if call.ri.verb == "patch" {
        negotiate::decode_json(&body)?
    } else {
        negotiate::decode_body(&call.parts.headers, &body)?
    };
    let info = call.info.clone();
    let name = call.name().to_string();
    let updated = call
        .state
        .registry
        .guaranteed_update(
            &info,
            call.ns(),
            &name,
            UpdateMode::Main,
            &call.ctx,
            |current| {
                let scale = scale_of(&info, current);
                let wanted = match patch_kind {
                    Some(kind) => crate::patch::apply(kind, &info, &scale, &doc)?,
                    None => doc.clone(),
                };
                let replicas = wanted
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let mut next = current.clone();
                next["spec"]["replicas"] = json!(replicas);
                match wanted
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                {
                    Some(rv) if !rv.is_empty() => meta::set_str(&mut next, "resourceVersion", rv),
                    _ => {}
                }
                Ok(next)
            },
        )
        .await?;
    Ok(respond::json(StatusCode::OK, &scale_of(&info, &updated)))
}

/// pods/binding: assigns a pod to a node, once.
async fn bind(mut call: Call) -> Result<Response> {
    let body = call.body_bytes().await?;
    let binding = negotiate::decode_body(&call.parts.headers, &body)?;
    let name = call.name().to_string();
    bind_pod(&call.state, call.ns(), &name, &binding, &call.ctx.user).await
}

/// Binds pod `name` (in the call's namespace) to the binding's target node.
pub async fn bind_pod(
    state: &ApiState,
    ns: Option<&str>,
    name: &str,
    binding: &Value,
    user: &crate::auth::UserInfo,
) -> Result<Response> {
    let pods = state
        .registry
        .resources
        .get("", "v1", "pods")
        .ok_or_else(ApiError::path_not_found)?;
    let name = name.to_string();
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            &pods,
            &name,
            &[api::FieldError::required("target.name", "")],
        ));
    }
    let info = pods;
    let system = Context {
        user: user.clone(),
        ..Context::system()
    };
    state
        .registry
        .guaranteed_update(&info, ns, &name, UpdateMode::Unchecked, &system, |pod| {
            if let Some(existing) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict(
                    &info,
                    &name,
                    &format!("pod {name} is already assigned to node \"{existing}\""),
                ));
            }
            if meta::deletion_timestamp(pod).is_some() {
                return Err(ApiError::conflict(
                    &info,
                    &name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            let mut next = pod.clone();
            next["spec"]["nodeName"] = json!(node);
            set_condition(&mut next, "PodScheduled", "True");
            Ok(next)
        })
        .await?;
    Ok(respond::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    let now = meta::now();
    let conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != kind)
        .collect();
    out.push(
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now}),
    );
    pod["status"]["conditions"] = json!(out);
}

/// Admission of a subresource create whose object is not stored (an Eviction, a
/// TokenRequest), as upstream runs it.
fn admit_create<'a>(
    call: &Call,
    sub: &'a str,
    object: &'a mut Value,
) -> impl Future<Output = Result<()>> + Send + 'a {
    // Only what is Sync is held across the awaits (the request body is not).
    let (state, info, ctx) = (call.state.clone(), call.info.clone(), call.ctx.clone());
    let ns = call.ns().map(str::to_string);
    async move {
        let mut req = crate::admission::Request {
            operation: crate::admission::Operation::Create,
            info: &info,
            subresource: Some(sub),
            namespace: ns.as_deref(),
            object,
            old: None,
            user: &ctx.user,
            dry_run: ctx.dry_run,
        };
        let admission = &state.registry.admission;
        admission.admit(&mut req).await?;
        admission.validate(&req).await
    }
}

/// pods/eviction: deletes the pod (disruption budgets are checked once they exist).
async fn evict(mut call: Call) -> Result<Response> {
    let body = call.body_bytes().await?;
    let mut eviction = negotiate::decode_body(&call.parts.headers, &body)?;
    // The pod of the path is the one evicted, whatever the body says.
    meta::set_str(&mut eviction, "name", call.name());
    admit_create(&call, "eviction", &mut eviction).await?;
    let opts: DeleteOptions = eviction
        .get("deleteOptions")
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value(v.clone()))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invalid deleteOptions: {e}")))?
        .unwrap_or_default();
    let name = call.name().to_string();
    call.state
        .registry
        .delete(&call.info, call.ns(), &name, &opts, &call.ctx)
        .await?;
    Ok(respond::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// serviceaccounts/token: a signed, expiring token for the account (TokenRequest).
async fn token_request(mut call: Call) -> Result<Response> {
    let Some(issuer) = call.state.service_account_tokens.clone() else {
        return Err(ApiError::unavailable(
            "this server issues no service account tokens",
        ));
    };
    let body = call.body_bytes().await?;
    let mut req = negotiate::decode_body(&call.parts.headers, &body)?;
    let name = call.name().to_string();
    let ns = call.ns().unwrap_or_default().to_string();
    meta::set_str(&mut req, "name", &name);
    admit_create(&call, "token", &mut req).await?;
    let sa = call
        .state
        .registry
        .get(&call.info, Some(&ns), &name)
        .await?;
    let uid = meta::uid(&sa).unwrap_or_default().to_string();
    let expiration = req
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if expiration < 600 {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration less than 10 minutes"
            ),
        ));
    }
    let audiences: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let pod = req
        .pointer("/spec/boundObjectRef")
        .filter(|r| r["kind"] == "Pod")
        .map(|r| {
            pki::jwt::ObjectRef::new(
                r["name"].as_str().unwrap_or_default(),
                r["uid"].as_str().unwrap_or_default(),
            )
        });
    let (token, exp) = issuer
        .issue(&ns, &name, &uid, audiences.clone(), expiration, pod)
        .map_err(ApiError::internal)?;
    let expires = jiff::Timestamp::from_second(exp)
        .map(meta::format_time)
        .unwrap_or_default();
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenRequest");
    req["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": meta::now()});
    req["spec"]["audiences"] = json!(if audiences.is_empty() {
        vec![pki::jwt::DEFAULT_ISSUER.to_string()]
    } else {
        audiences
    });
    req["spec"]["expirationSeconds"] = json!(expiration);
    req["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(respond::json(StatusCode::CREATED, &req))
}
