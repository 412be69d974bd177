//! Turning objects, lists and tables into HTTP responses in the representation the
//! client accepted.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use api::ResourceInfo;

use crate::negotiate::{self, Output};
use crate::registry::ListPage;

/// Which object each Table row carries (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

pub fn raw(status: StatusCode, body: Vec<u8>, content_type: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub fn json(status: StatusCode, value: &Value) -> Response {
    raw(
        status,
        serde_json::to_vec(value).unwrap_or_default(),
        "application/json",
    )
}

fn meta_api_version(v1beta1: bool) -> &'static str {
    if v1beta1 {
        "meta.k8s.io/v1beta1"
    } else {
        "meta.k8s.io/v1"
    }
}

fn partial_metadata(obj: &Value, v1beta1: bool) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A meta.k8s.io Table of `items`.
pub fn table(
    info: &ResourceInfo,
    items: &[Value],
    list_meta: Value,
    include: IncludeObject,
    v1beta1: bool,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": info.printer.row(obj, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj, v1beta1),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    let columns = if with_columns {
        json!(info.printer.columns())
    } else {
        json!([])
    };
    json!({
        "kind": "Table",
        "apiVersion": meta_api_version(v1beta1),
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// One object as the client asked for it.
pub fn object(
    status: StatusCode,
    info: &ResourceInfo,
    obj: &Value,
    output: Output,
    include: IncludeObject,
) -> Response {
    let rendered = match output {
        Output::Table { v1beta1 } => {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            table(
                info,
                std::slice::from_ref(obj),
                json!({"resourceVersion": rv}),
                include,
                v1beta1,
                true,
            )
        }
        Output::Metadata { v1beta1 } => partial_metadata(obj, v1beta1),
        _ => return encoded(status, obj, output),
    };
    encoded(status, &rendered, output)
}

fn list_metadata(page: &ListPage) -> Value {
    let mut m = json!({"resourceVersion": page.revision.to_string()});
    if let Some(c) = &page.continue_token {
        m["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        m["remainingItemCount"] = json!(r);
    }
    m
}

/// A list page as the client asked for it.
pub fn list(
    info: &ResourceInfo,
    page: ListPage,
    output: Output,
    include: IncludeObject,
) -> Response {
    let meta = list_metadata(&page);
    let rendered = match output {
        Output::Table { v1beta1 } => table(info, &page.items, meta, include, v1beta1, true),
        Output::Metadata { v1beta1 } => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|o| partial_metadata(o, v1beta1))
                .collect();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": meta_api_version(v1beta1), "metadata": meta, "items": items})
        }
        _ => {
            json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": meta, "items": page.items})
        }
    };
    encoded(StatusCode::OK, &rendered, output)
}

fn encoded(status: StatusCode, value: &Value, output: Output) -> Response {
    let (body, _) = negotiate::encode(value, output);
    let ct = match output {
        Output::Yaml => "application/yaml",
        Output::Table { v1beta1: false } => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Output::Table { v1beta1: true } => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        Output::Metadata { v1beta1: false } => {
            "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
        }
        Output::Metadata { v1beta1: true } => {
            "application/json;as=PartialObjectMetadata;v=v1beta1;g=meta.k8s.io"
        }
        _ => "application/json",
    };
    raw(status, body, ct)
}

/// The Status a delete returns when the object is gone (upstream's finalizeDelete).
pub fn delete_status(info: &ResourceInfo, obj: &Value) -> Value {
    let mut details = json!({
        "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "kind": info.plural,
        "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
    });
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
