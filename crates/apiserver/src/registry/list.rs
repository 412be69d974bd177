//! List: label and field selectors, paging with continue tokens, and reads at a
//! resourceVersion with upstream's `resourceVersionMatch` rules.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use api::ResourceInfo;
use api::selectors::{FieldSelector, LabelSelector};
use store::{ListOptions, Revision};

use super::{Registry, codec};
use crate::error::{ApiError, Result};

/// What a list asks for.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// 0: everything.
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub revision: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// The continue token: where the next page starts and at which revision. Opaque to
/// clients.
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    rv: Revision,
    /// The last key returned, relative to the list prefix (the next page starts after it).
    start: String,
}

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

impl Registry {
    pub async fn list(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        params: &ListParams,
    ) -> Result<ListPage> {
        let prefix = info.list_prefix(ns);
        let (revision, mut after) = read_point(params)?;
        let mut page = ListPage::default();
        let mut scanned_revision = revision;
        let filtering = !params.labels.is_empty() || !params.fields.is_empty();
        loop {
            let opts = ListOptions {
                limit: if params.limit == 0 {
                    0
                } else {
                    params.limit.saturating_sub(page.items.len()).max(1)
                },
                continue_after: after.as_ref().map(|s| format!("{prefix}{s}")),
                revision: scanned_revision,
            };
            let result = self.store.list(&prefix, opts).await.map_err(|e| match e {
                store::Error::Compacted { .. } if params.continue_token.is_some() => {
                    ApiError::gone(EXPIRED_CONTINUE)
                }
                store::Error::Compacted { .. } => {
                    ApiError::gone("The resourceVersion for the provided list is too old.")
                }
                e => ApiError::from_store(e, info, ""),
            })?;
            scanned_revision = result.revision;
            page.revision = result.revision;
            for kv in &result.items {
                after = Some(kv.key[prefix.len()..].to_string());
                let obj = codec::decode(kv)?;
                if !filtering || matches(info, params, &obj) {
                    page.items.push(obj);
                }
            }
            let full = params.limit > 0 && page.items.len() >= params.limit;
            if !result.more {
                break;
            }
            if full {
                let token = ContinueToken {
                    rv: scanned_revision,
                    start: after.clone().unwrap_or_default(),
                };
                page.continue_token = Some(encode_token(&token));
                // With selectors the count of what remains is unknown, as upstream says.
                page.remaining = (!filtering).then_some(result.remaining);
                break;
            }
        }
        Ok(page)
    }
}

/// Whether `obj` passes the list's selectors.
pub(crate) fn matches(info: &ResourceInfo, params: &ListParams, obj: &Value) -> bool {
    params.labels.matches(api::meta::labels(obj))
        && params.fields.matches(&info.selectable_fields.fields(obj))
}

/// The revision to read at (0: latest) and the key to resume after.
fn read_point(params: &ListParams) -> Result<(Revision, Option<String>)> {
    if let Some(token) = &params.continue_token {
        if params
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let t = decode_token(token)?;
        return Ok((t.rv, Some(t.start)));
    }
    let rv = params
        .resource_version
        .as_deref()
        .filter(|rv| !rv.is_empty());
    match (
        rv,
        params
            .resource_version_match
            .as_deref()
            .filter(|m| !m.is_empty()),
    ) {
        (None, Some(_)) => Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (Some("0"), Some("Exact")) => Err(ApiError::bad_request(
            "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
        )),
        (Some(rv), Some("Exact")) => Ok((codec::parse_resource_version(rv)?, None)),
        // A paged list at a resourceVersion reads exactly there, as upstream does.
        (Some(rv), None) if params.limit > 0 && rv != "0" => {
            Ok((codec::parse_resource_version(rv)?, None))
        }
        (Some(rv), Some("NotOlderThan") | None) => {
            codec::parse_resource_version(rv)?;
            Ok((0, None))
        }
        (_, Some(other)) => Err(ApiError::bad_request(format!(
            "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
        ))),
        (None, None) => Ok((0, None)),
    }
}

fn encode_token(t: &ContinueToken) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token(s: &str) -> Result<ContinueToken> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {s:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
