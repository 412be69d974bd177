//! `/healthz`, `/livez`, `/readyz` (with `?verbose` and per-check paths) and `/version`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::state::ApiState;

/// Named health checks; readiness also waits for bootstrap to finish.
#[derive(Default)]
pub struct Health {
    bootstrapped: AtomicBool,
}

impl Health {
    pub fn set_bootstrapped(&self) {
        self.bootstrapped.store(true, Ordering::SeqCst);
    }

    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Healthz,
    Livez,
    Readyz,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Healthz => "healthz",
            Kind::Livez => "livez",
            Kind::Readyz => "readyz",
        }
    }
}

async fn results(state: &ApiState, kind: Kind) -> Vec<(&'static str, Result<(), String>)> {
    let mut out = vec![("ping", Ok(())), ("log", Ok(()))];
    let store = state
        .registry
        .store
        .current_revision()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    out.push(("etcd", store));
    if kind != Kind::Livez {
        let boot = if state.health.is_bootstrapped() {
            Ok(())
        } else {
            Err("not finished".to_string())
        };
        out.push(("poststarthook/bootstrap-controller", boot));
    }
    out
}

async fn report(
    state: Arc<ApiState>,
    kind: Kind,
    only: Option<String>,
    query: Option<String>,
) -> Response {
    let verbose = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .any(|p| p == "verbose" || p == "verbose=true");
    let checks = results(&state, kind).await;
    if let Some(name) = only {
        return match checks.iter().find(|(n, _)| *n == name) {
            Some((_, Ok(()))) => (StatusCode::OK, "ok").into_response(),
            Some((_, Err(e))) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {e}"),
            )
                .into_response(),
            None => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        };
    }
    let failed = checks.iter().any(|(_, r)| r.is_err());
    let code = if failed {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    if !verbose && !failed {
        return (code, "ok").into_response();
    }
    let mut text = String::new();
    for (name, r) in &checks {
        match r {
            Ok(()) => text.push_str(&format!("[+]{name} ok\n")),
            Err(_) => text.push_str(&format!("[-]{name} failed: reason withheld\n")),
        }
    }
    if failed {
        text.push_str(&format!("{} check failed\n", kind.label()));
    } else {
        text.push_str(&format!("{} check passed\n", kind.label()));
    }
    (code, text).into_response()
}

pub async fn healthz(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    report(s, Kind::Healthz, None, q).await
}
pub async fn livez(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    report(s, Kind::Livez, None, q).await
}
pub async fn readyz(State(s): State<Arc<ApiState>>, RawQuery(q): RawQuery) -> Response {
    report(s, Kind::Readyz, None, q).await
}
pub async fn healthz_check(
    State(s): State<Arc<ApiState>>,
    Path(c): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    report(s, Kind::Healthz, Some(c), q).await
}
pub async fn livez_check(
    State(s): State<Arc<ApiState>>,
    Path(c): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    report(s, Kind::Livez, Some(c), q).await
}
pub async fn readyz_check(
    State(s): State<Arc<ApiState>>,
    Path(c): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    report(s, Kind::Readyz, Some(c), q).await
}

/// `/version`: the Kubernetes version served, as kube-apiserver reports it.
pub async fn version() -> Response {
    let v = api::KUBERNETES_VERSION.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    let body = json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": (minor.parse::<u32>().unwrap_or(1).saturating_sub(1)).to_string(),
        "gitVersion": format!("{}+k8rs", api::KUBERNETES_VERSION),
        "gitCommit": option_env!("K8RS_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": option_env!("K8RS_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, goarch()),
    });
    axum::Json(body).into_response()
}

/// The architecture names Go (and so Kubernetes) uses.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
