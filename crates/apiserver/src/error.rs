//! The one place where errors become Kubernetes `Status` responses.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use api::{FieldError, ResourceInfo, validation::aggregate};

/// An API error: an HTTP code, a `StatusReason` and the message clients show.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": info.plural});
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> Self {
        let msg = if name.is_empty() {
            format!("{} is forbidden: {why}", info.group_resource())
        } else {
            format!("{} {name:?} is forbidden: {why}", info.group_resource())
        };
        Self::new(403, "Forbidden", msg).with_details(details(info, name))
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", info.group_resource()),
        )
        .with_details(details(info, name))
    }

    /// A 404 for a path that names no resource at all.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", info.group_resource()),
        )
        .with_details(details(info, name))
    }

    /// The message clients see on a failed optimistic-concurrency update.
    pub fn conflict(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                info.group_resource()
            ),
        )
        .with_details(details(info, name))
    }

    pub fn modified(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field error, worded as upstream's `NewInvalid`.
    pub fn invalid(info: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let kind = if info.group.is_empty() {
            info.kind.clone()
        } else {
            format!("{}.{}", info.kind, info.group)
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(
                |e| json!({"reason": e.kind.cause_reason(), "message": e.body(), "field": e.field}),
            )
            .collect();
        let mut d = json!({"name": name, "kind": info.kind, "causes": causes});
        if !info.group.is_empty() {
            d["group"] = json!(info.group);
        }
        Self::new(
            422,
            "Invalid",
            format!("{kind} {name:?} is invalid: {}", aggregate(errors)),
        )
        .with_details(d)
    }

    pub fn method_not_supported(info: &ResourceInfo, verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind {:?}",
                info.group_resource()
            ),
        )
        .with_details(json!({"kind": info.plural, "group": info.group}))
    }

    /// 422 for invalid watch options, as upstream words it (`ListOptions.meta.k8s.io "" is invalid: …`).
    pub fn invalid_watch(field: &str, detail: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}"),
        )
        .with_details(json!({"kind": "ListOptions", "group": "meta.k8s.io", "causes": [{"reason": "FieldValueForbidden", "message": format!("Forbidden: {detail}"), "field": field}]}))
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// Maps a store error for an operation on `name` of `info`.
    pub fn from_store(err: store::Error, info: &ResourceInfo, name: &str) -> Self {
        use store::Error as E;
        match err {
            E::NotFound { .. } => Self::not_found(info, name),
            E::AlreadyExists { .. } => Self::already_exists(info, name),
            E::Conflict { .. } => Self::modified(info, name),
            E::Compacted { requested, compacted } => {
                Self::gone(format!("too old resource version: {requested} ({compacted})"))
            }
            E::FutureRevision { requested, current } => Self::new(
                504,
                "Timeout",
                format!("Too large resource version: {requested}, current: {current}"),
            )
            .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})),
            E::TooLarge { .. } => Self::too_large(store::MAX_VALUE_BYTES),
            E::Unavailable(m) => Self::unavailable(format!("storage is unavailable: {m}")),
            other => Self::internal(other),
        }
    }

    /// The `Status` object of this error.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> ResourceInfo {
        api::builtin::resources()
            .into_iter()
            .find(|r| r.plural == "pods")
            .unwrap()
    }

    #[test]
    fn messages_match_upstream() {
        let p = pods();
        assert_eq!(
            ApiError::not_found(&p, "web").message,
            r#"pods "web" not found"#
        );
        assert_eq!(
            ApiError::already_exists(&p, "web").status()["reason"],
            "AlreadyExists"
        );
        let deploy = api::builtin::resources()
            .into_iter()
            .find(|r| r.plural == "deployments")
            .unwrap();
        let e = ApiError::invalid(&deploy, "web", &[FieldError::required("spec.selector", "")]);
        assert_eq!(
            e.message,
            r#"Deployment.apps "web" is invalid: spec.selector: Required value"#
        );
        assert_eq!(
            e.status()["details"]["causes"][0]["reason"],
            "FieldValueRequired"
        );
        assert_eq!(
            ApiError::modified(&deploy, "web").message,
            r#"Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again"#
        );
    }
}
