//! The kubelet's HTTPS API (port 10250): container logs, and the exec, attach and
//! port-forward sessions the API server proxies for kubectl.
//!
//! Only the API server is served: a caller must present a client certificate from the
//! cluster CA whose user is in `system:masters` (the API server's kubelet client
//! identity), which is what a kubelet with webhook authorization ends up allowing.

mod logs;
mod lookup;
mod stats;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::{Config, Error, Result, Runtime};

/// The group whose members may use the kubelet API.
const ALLOWED_GROUP: &str = "system:masters";

/// Where and how the kubelet API listens.
#[derive(Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// The kubelet's serving certificate and key.
    pub serving: pki::CertAndKey,
    /// The CA that signs the API server's client certificate.
    pub client_ca_pem: String,
}

/// The kubelet API, bound but not yet serving: the port must be known when the Node
/// is registered, the runtime only later.
pub struct KubeletApi {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl KubeletApi {
    pub async fn bind(config: ServerConfig) -> Result<Self> {
        let tls = pki::tls::server_config(&config.serving, &config.client_ca_pem)
            .map_err(|e| Error::Server(format!("kubelet TLS configuration: {e}")))?;
        // WebSocket and SPDY upgrades need HTTP/1.1; the API server dials with it.
        let mut tls = Arc::unwrap_or_clone(tls);
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::Server(format!("cannot listen on {}: {e}", config.addr)))?;
        Ok(KubeletApi {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
        })
    }

    /// The bound port (useful when bound to port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Serves until dropped.
    pub async fn serve(self, runtime: Runtime, node: Arc<Config>) {
        serve(self.listener, self.acceptor, router(runtime, &node)).await
    }
}

fn router(runtime: Runtime, node: &Config) -> Router {
    let stats = Arc::new(stats::StatsState {
        runtime: runtime.clone(),
        node_name: node.node_name.clone(),
        data_dir: node.data_dir.clone(),
        sampler: Default::default(),
    });
    tokio::spawn(stats::sample_forever(Arc::downgrade(&stats)));
    let stats = Router::new()
        .route("/stats/summary", get(stats::summary))
        .route("/metrics/resource", get(stats::resource_metrics))
        .with_state(stats);
    let state = Arc::new(runtime);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(logs::container_logs),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(stream::exec).post(stream::exec),
        )
        .route(
            "/attach/{namespace}/{pod}/{container}",
            get(stream::attach).post(stream::attach),
        )
        .route(
            "/portForward/{namespace}/{pod}",
            get(stream::port_forward).post(stream::port_forward),
        )
        .with_state(state)
        .merge(stats)
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet API accept failed");
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let allowed = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| pki::tls::cert_user(c));
            let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let app = app.clone();
                let refusal = refusal(allowed.as_ref());
                async move {
                    match refusal {
                        None => app.oneshot(req.map(Body::new)).await,
                        Some(resp) => Ok(resp),
                    }
                }
            });
            let conn = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = conn
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "kubelet API connection ended");
            }
        });
    }
}

/// Upstream's kubelet answers unauthenticated callers 401 and others 403, in text.
fn refusal(user: Option<&(String, Vec<String>)>) -> Option<Response<Body>> {
    let (status, msg) = match user {
        None => (StatusCode::UNAUTHORIZED, "Unauthorized".to_string()),
        Some((_, groups)) if groups.iter().any(|g| g == ALLOWED_GROUP) => return None,
        Some((name, _)) => (
            StatusCode::FORBIDDEN,
            format!("Forbidden (user={name}, verb=get, resource=nodes, subresource=proxy)"),
        ),
    };
    Some(text(status, msg))
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(body.into()))
        .expect("static response parts")
}
