//! Test support: serves the API in-process over plain HTTP on a free loopback port,
//! on a memory store, for tests of the API layer and of controllers; drives it with the
//! real kubectl and with kube-rs.

pub mod memory_store;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use apiserver::auth::{
    Authenticated, Authenticator, AuthorizationMode, ServiceAccountTokens, StaticTokens, UserInfo,
};

pub const TOKEN: &str = "test-admin-token";

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl TestServer {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let store = memory_store::MemoryStore::new();
        let admin = UserInfo::new("system:admin", vec!["system:masters".into()]);
        let state = apiserver::build(apiserver::Options {
            store,
            authenticator: Authenticator {
                tokens: vec![Arc::new(StaticTokens(vec![(TOKEN.into(), admin)]))],
            },
            server_address: addr.to_string(),
            bookmark_interval: Some(Duration::from_secs(1)),
            default_watch_timeout: Duration::from_secs(600),
            service_cidr: "10.43.0.0/16".parse().unwrap(),
            node_port_range: 30000..=32767,
            toleration_defaults: Default::default(),
            kubelet_client: None,
            // Signed service account tokens, so `kubectl create token` works.
            service_account_tokens: Some(ServiceAccountTokens::new(
                pki::jwt::ServiceAccountKey::generate().expect("service account key"),
            )),
            authorization_modes: vec![AuthorizationMode::Node, AuthorizationMode::Rbac],
        });
        runtime.block_on(async {
            apiserver::crd::load(&state).await.unwrap();
            let cfg = apiserver::bootstrap::BootstrapConfig {
                kubernetes_service_ip: "10.43.0.1".parse().unwrap(),
                advertise_address: "127.0.0.1".parse().unwrap(),
                secure_port: addr.port(),
            };
            apiserver::bootstrap::run(&state.registry, &cfg)
                .await
                .unwrap();
            apiserver::auth::rbac::start(&state).await.unwrap();
            state.health.set_bootstrapped();
        });
        apiserver::crd::spawn_sync_on(runtime.handle(), state.clone());
        // kubectl sends no credentials over plain HTTP: every request is the admin.
        let admin = UserInfo::new("system:admin", vec!["system:masters".into()]);
        let app = apiserver::server::router(state).layer(axum::middleware::from_fn(
            move |mut req: axum::extract::Request, next: axum::middleware::Next| {
                req.extensions_mut().insert(Authenticated(admin.clone()));
                next.run(req)
            },
        ));
        runtime.spawn(apiserver::server::serve_plain(listener, app));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let url = format!("http://{addr}");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {url}\nusers:\n- name: t\n  user:\n    token: {TOKEN}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\ncurrent-context: t\n"
            ),
        )
        .unwrap();
        Self {
            dir,
            kubeconfig,
            url,
            _runtime: runtime,
        }
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("valid URL"));
        kube::Client::try_from(config).expect("client")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub fn stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}
