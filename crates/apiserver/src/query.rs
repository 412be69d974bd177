//! Query parameters of API requests.

use std::collections::HashMap;

use crate::error::{ApiError, Result};

#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A non-empty value.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// `true`/`1` are true; absent is false; anything else is a 400.
    pub fn flag(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid value {other:?} for {key}: expected a boolean"
            ))),
        }
    }

    pub fn optional_flag(&self, key: &str) -> Result<Option<bool>> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.flag(key).map(Some)
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        self.value(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for {key}: expected an integer"
                    ))
                })
            })
            .transpose()
    }

    /// `dryRun=All` (the only value upstream accepts).
    pub fn dry_run(&self) -> Result<bool> {
        match self.value("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: dryRun: Unsupported value: {other:?}: supported values: \"All\""
            ))),
        }
    }
}
