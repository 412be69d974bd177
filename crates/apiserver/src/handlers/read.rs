//! get, list and watch.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use api::ResourceInfo;
use api::selectors::{FieldSelector, LabelSelector};

use super::Call;
use super::respond::{self, IncludeObject};
use crate::error::{ApiError, Result};
use crate::negotiate::Output;
use crate::query::Query;
use crate::registry::{ListParams, WatchEvent, WatchParams, watch_line};

pub async fn get(call: Call) -> Result<Response> {
    let obj = call
        .state
        .registry
        .get(&call.info, call.ns(), call.name())
        .await?;
    let include = IncludeObject::parse(call.query.get("includeObject"));
    Ok(respond::object(
        StatusCode::OK,
        &call.info,
        &obj,
        call.output,
        include,
    ))
}

/// Label and field selectors of a list or watch, with fields checked against what the
/// type supports.
pub fn selectors(info: &ResourceInfo, query: &Query) -> Result<(LabelSelector, FieldSelector)> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
        .and_then(|f| f.convert(info.selectable_fields.as_ref()))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

pub async fn list(call: Call) -> Result<Response> {
    let (labels, fields) = selectors(&call.info, &call.query)?;
    let params = ListParams {
        labels,
        fields,
        limit: call.query.int("limit")?.unwrap_or(0).max(0) as usize,
        continue_token: call.query.value("continue").map(str::to_string),
        resource_version: call.query.get("resourceVersion").map(str::to_string),
        resource_version_match: call.query.get("resourceVersionMatch").map(str::to_string),
    };
    let page = call
        .state
        .registry
        .list(&call.info, call.ns(), &params)
        .await?;
    let include = IncludeObject::parse(call.query.get("includeObject"));
    Ok(respond::list(&call.info, page, call.output, include))
}

/// Streams watch events as newline-delimited JSON, until the client goes away, the
/// timeout passes or the watch fails.
pub async fn watch(call: Call) -> Result<Response> {
    let (labels, fields) = selectors(&call.info, &call.query)?;
    let params = WatchParams {
        labels,
        fields,
        resource_version: call.query.get("resourceVersion").map(str::to_string),
        resource_version_match: call.query.get("resourceVersionMatch").map(str::to_string),
        send_initial_events: call.query.optional_flag("sendInitialEvents")?,
        allow_bookmarks: call.query.flag("allowWatchBookmarks")?,
        bookmark_interval: call.state.bookmark_interval,
    };
    let timeout = call
        .query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(call.state.default_watch_timeout);
    let events = call
        .state
        .registry
        .watch_events(&call.info, call.ns(), params)
        .await?;
    let info = call.info.clone();
    let output = call.output;
    let include = IncludeObject::parse(call.query.get("includeObject"));
    let mut first = true;
    let events = events
        .take_until(tokio::time::sleep(timeout))
        .map(move |ev| {
            let line = encode_event(&info, ev, output, include, first);
            first = false;
            Ok::<Bytes, std::convert::Infallible>(line)
        });
    let mut resp = Response::new(Body::from_stream(events));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// One watch event line: `{"type":"ADDED","object":{…}}\n`, the object rendered as the
/// client asked (a one-row Table for `kubectl get -w`).
fn encode_event(
    info: &ResourceInfo,
    ev: WatchEvent,
    output: Output,
    include: IncludeObject,
    first: bool,
) -> Bytes {
    let kind = ev.type_name();
    let rendered = match (&ev, output) {
        (WatchEvent::Error(_) | WatchEvent::Bookmark(_), _) => None,
        (_, Output::Table { v1beta1 }) => {
            let obj = ev.object();
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            Some(respond::table(
                info,
                std::slice::from_ref(obj),
                json!({"resourceVersion": rv}),
                include,
                v1beta1,
                first,
            ))
        }
        (_, Output::Metadata { v1beta1 }) => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
            "metadata": ev.object().get("metadata").cloned().unwrap_or(json!({})),
        })),
        _ => None,
    };
    match rendered {
        Some(object) => watch_line(kind, &object),
        // The object as stored: its line is shared with every watcher of this change.
        None => ev.shared().watch_line(kind),
    }
}
