//! The listeners: plain HTTP, and HTTPS whose certificate is chosen by SNI; each
//! connection speaks HTTP/1.1 (keep-alive, upgrades) or HTTP/2 (ALPN `h2` on TLS,
//! the preface on plain connections).

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::proxy::{Conn, Proxy};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves plain HTTP on `listener` until the task is dropped.
pub async fn http(listener: TcpListener, proxy: Arc<Proxy>) {
    accept(listener, None, proxy).await
}

/// Serves HTTPS on `listener` until the task is dropped.
pub async fn https(listener: TcpListener, tls: Arc<rustls::ServerConfig>, proxy: Arc<Proxy>) {
    accept(listener, Some(tokio_rustls::TlsAcceptor::from(tls)), proxy).await
}

async fn accept(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, proxy: Arc<Proxy>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "ingress accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(local) = tcp.local_addr() else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (proxy, tls) = (proxy.clone(), tls.clone());
        tokio::spawn(async move {
            let conn = Conn {
                peer,
                local,
                tls: tls.is_some(),
            };
            match tls {
                None => serve_conn(tcp, conn, proxy).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_conn(stream, conn, proxy).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn serve_conn<S>(stream: S, conn: Conn, proxy: Arc<Proxy>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let proxy = proxy.clone();
        async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, conn).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(peer = %conn.peer, error = %e, "ingress connection ended");
    }
}

/// The HTTPS listener's TLS: certificates from `resolver`, HTTP/2 or HTTP/1.1.
pub fn tls_config(
    resolver: Arc<crate::certs::Resolver>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
