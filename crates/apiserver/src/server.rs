//! The HTTP router and the HTTPS accept loop. Our own loop over tokio-rustls, so that
//! the client certificate of each connection reaches the handlers as its user.

use std::net::SocketAddr;
use std::sync::Arc;

pub use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::{
    Attributes, Authenticated, Decision, PRIVILEGED_GROUP, UserInfo, forbidden, impersonate,
};
use crate::error::ApiError;
use crate::state::ApiState;
use crate::{handlers, health, metrics, request_info};

/// Maps a verified client certificate to its user (CN → name, O → groups).
pub type CertUser = Arc<dyn Fn(&CertificateDer<'_>) -> Option<UserInfo> + Send + Sync>;

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/healthz/{check}", get(health::healthz_check))
        .route("/livez", get(health::livez))
        .route("/livez/{check}", get(health::livez_check))
        .route("/readyz", get(health::readyz))
        .route("/readyz/{check}", get(health::readyz_check))
        .route("/version", get(health::version))
        .route("/metrics", get(metrics::handler))
        .route("/api", axum::routing::any(handlers::api))
        .route("/api/{*rest}", axum::routing::any(handlers::api))
        .route("/apis", axum::routing::any(handlers::api))
        .route("/apis/{*rest}", axum::routing::any(handlers::api))
        .merge(crate::openapi::routes())
        .fallback(|| async { ApiError::path_not_found().into_response() })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .with_state(state)
}

/// Paths anyone may read without credentials when anonymous requests are off
/// (upstream's system:public-info-viewer paths).
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

async fn authenticate(
    State(state): State<Arc<ApiState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let user = match state.authenticator.authenticate(&mut parts) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    if user.is_anonymous() && !state.anonymous_auth && !is_public(parts.uri.path()) {
        return ApiError::unauthorized().into_response();
    }
    let user = match impersonate::apply(&*state.authorizer, user, &parts.headers) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    // Resource requests are authorized by the API handler, which knows the resource;
    // every other path (discovery, health, OpenAPI, metrics) here. system:masters,
    // whom the chain allows first anyway, skip the path parse.
    let path = parts.uri.path();
    let privileged = user.groups.iter().any(|g| g == PRIVILEGED_GROUP);
    if !privileged && request_info::parse_path(&parts.method, path, false).is_none() {
        let verb = parts.method.as_str().to_ascii_lowercase();
        let attrs = Attributes::non_resource(&verb, path);
        match state.authorizer.authorize(&user, &attrs) {
            Decision::Allow => {}
            Decision::Deny(r) | Decision::NoOpinion(r) => {
                return forbidden(&user, &attrs, &r).into_response();
            }
        }
    }
    parts.extensions.insert(user);
    req = Request::from_parts(parts, body);
    next.run(req).await
}

/// Serves `app` over TLS on `listener` until the task is dropped.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cert_user: CertUser,
    app: Router,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let cert_user = cert_user.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let user = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| cert_user(c));
            serve_connection(TokioIo::new(stream), app, user, peer).await;
        });
    }
}

/// Serves `app` over plain HTTP (tests and in-cluster loopback only).
pub async fn serve_plain(listener: TcpListener, app: Router) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            serve_connection(TokioIo::new(tcp), app, None, peer).await;
        });
    }
}

async fn serve_connection<I>(io: I, app: Router, user: Option<UserInfo>, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        if let Some(u) = &user {
            req.extensions_mut().insert(Authenticated(u.clone()));
        }
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection_with_upgrades(io, svc).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
