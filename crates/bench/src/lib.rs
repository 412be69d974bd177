//! Shared set-up for the benchmarks: an API server on a real store, in-process, with
//! kube-rs clients that call its router directly (as `k8rs server` wires its own
//! components), and percentile helpers.

use std::sync::Arc;
use std::time::Duration;

use apiserver::auth::{Authenticated, Authenticator, UserInfo};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// An API server on a SQLite store in a temp dir, behind the watch cache as
/// `k8rs server` composes them.
pub struct Bench {
    pub state: Arc<apiserver::ApiState>,
    pub router: apiserver::server::Router,
    _dir: tempfile::TempDir,
}

impl Bench {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite =
            Arc::new(store::sqlite::SqliteStore::open(dir.path().join("state.db")).expect("store"));
        let store = Arc::new(store::cache::WatchCache::new(
            sqlite,
            store::cache::CacheConfig::default(),
        ));
        Self::with_store(store, dir).await
    }

    pub async fn with_store(store: Arc<dyn store::Store>, dir: tempfile::TempDir) -> Self {
        Self::with_service_cidr(store, dir, "10.43.0.0/16".parse().expect("cidr")).await
    }

    /// With ClusterIPs from `service_cidr` (its first address is `kubernetes`'), so
    /// benchmarks that program them into the kernel stay clear of other servers.
    pub async fn with_service_cidr(
        store: Arc<dyn store::Store>,
        dir: tempfile::TempDir,
        service_cidr: ipnet::Ipv4Net,
    ) -> Self {
        let kubernetes_ip = service_cidr.hosts().next().expect("a host address");
        let state = apiserver::build(apiserver::Options {
            store,
            authenticator: Authenticator::default(),
            server_address: "127.0.0.1:6443".into(),
            bookmark_interval: None,
            default_watch_timeout: Duration::from_secs(3600),
            service_cidr: service_cidr.into(),
            node_port_range: 30000..=32767,
            toleration_defaults: Default::default(),
            kubelet_client: None,
            service_account_tokens: None,
            authorization_modes: vec![
                apiserver::auth::AuthorizationMode::Node,
                apiserver::auth::AuthorizationMode::Rbac,
            ],
        });
        let boot = apiserver::bootstrap::BootstrapConfig {
            kubernetes_service_ip: kubernetes_ip.into(),
            advertise_address: "127.0.0.1".parse().expect("ip"),
            secure_port: 6443,
        };
        apiserver::bootstrap::run(&state.registry, &boot)
            .await
            .expect("bootstrap");
        apiserver::auth::rbac::start(&state)
            .await
            .expect("RBAC bootstrap");
        let router = apiserver::server::router(state.clone());
        Self {
            state,
            router,
            _dir: dir,
        }
    }

    /// A client calling the router in-process as `system:admin`. Each request runs
    /// in a task of its own, as a real server's connections do: otherwise the server
    /// side of every request polled by one `buffer_unordered` would share the caller's
    /// thread and the benchmark would measure one core.
    pub fn client(&self) -> kube::Client {
        let user = UserInfo::new("system:admin", vec!["system:masters".into()]);
        let router = self.router.clone();
        let svc = tower::service_fn(move |mut req: http::Request<kube::client::Body>| {
            req.extensions_mut().insert(Authenticated(user.clone()));
            let served = tokio::spawn(tower::ServiceExt::oneshot(router.clone(), req));
            async move {
                match served.await {
                    Ok(Ok(resp)) => Ok(resp),
                    Ok(Err(never)) => match never {},
                    Err(join) => Err(Box::new(join) as tower::BoxError),
                }
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Sends a request straight to the router as `system:admin`, in a task of its own
    /// as a connection's requests run, and reads the whole response: no client
    /// library in between, as a load generator sends prepared requests.
    pub async fn send(&self, mut req: http::Request<Full<Bytes>>) -> (http::StatusCode, Bytes) {
        req.extensions_mut().insert(Authenticated(UserInfo::new(
            "system:admin",
            vec!["system:masters".into()],
        )));
        let router = self.router.clone();
        tokio::spawn(async move {
            let resp = match tower::ServiceExt::oneshot(router, req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let status = resp.status();
            let body = resp.into_body().collect().await.expect("response body");
            (status, body.to_bytes())
        })
        .await
        .expect("request task")
    }
}

/// CPU time this process's threads have run so far, summed from each thread's
/// `/proc/self/task/*/schedstat` (nanoseconds; `/proc/self/stat` counts 10 ms ticks,
/// too coarse for a phase of a few hundred ms). A measure of work that, unlike
/// throughput, other load on the machine barely moves. Threads that have exited are
/// not counted, so take it around phases whose threads live on (tokio's workers, the
/// store's writer).
pub fn process_cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
