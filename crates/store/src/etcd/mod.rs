//! The etcd v3 backend: the store kube-apiserver itself uses. Keys are stored as given
//! (`/registry/<resource>/<namespace>/<name>`), so `etcdctl get /registry --prefix
//! --keys-only` shows upstream's layout, and etcd's own revisions are the
//! resourceVersions.

mod errors;
mod hub;
mod kv;
mod pool;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, CompactionOptions, ConnectOptions, GetOptions, GetResponse, Identity, KvClient,
    TlsOptions, Txn, TxnResponse,
};
use tokio::sync::mpsc;

use crate::{Error, KeyValue, ListOptions, ListResult, Result, Revision, Store, WatchStream};
use errors::Failure;
use pool::{Call, Members};

/// How long one request may take before the store reports etcd unavailable. etcd
/// itself gives up on a proposal after about 7s without quorum ("request timed out").
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long opening a connection to one member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses as large as etcd sends them: a full list of a big resource easily passes
/// gRPC's 4 MiB default (upstream's client allows `math.MaxInt32` too).
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// Where the etcd cluster is and how to authenticate to it.
#[derive(Clone, Debug, Default)]
pub struct EtcdConfig {
    /// Client URLs, `http://host:2379` or `https://host:2379`.
    pub endpoints: Vec<String>,
    /// CA bundle to verify the members' serving certificates (https only).
    pub ca_file: Option<PathBuf>,
    /// Client certificate for etcd's `--client-cert-auth` (with `key_file`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Clone)]
pub struct EtcdStore {
    members: Arc<Members>,
    /// The task multiplexing every watch onto one etcd watch stream.
    hub: mpsc::UnboundedSender<hub::Command>,
    /// The endpoints as configured, for error messages.
    endpoints: String,
    /// The highest compaction revision this process has seen, for `Compacted` errors
    /// (etcd's range errors do not say how far history was compacted).
    compacted: Arc<AtomicI64>,
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the etcd {what} {}: {e}",
            path.display()
        ))
    })
}

/// TLS settings for `https://` endpoints; `None` for plain `http://` ones.
fn tls_options(config: &EtcdConfig) -> Result<Option<TlsOptions>> {
    let https = config.endpoints.iter().any(|e| e.starts_with("https://"));
    let files = config.ca_file.is_some() || config.cert_file.is_some() || config.key_file.is_some();
    if !https {
        if files {
            return Err(Error::Config(
                "etcd CA, certificate or key files were given, but the endpoints are plain http://"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    match &config.ca_file {
        Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read_file("CA file", ca)?)),
        // No system roots are compiled in; etcd's certificates come from a private CA.
        None => {
            return Err(Error::Config(
                "https:// etcd endpoints need a CA file to verify the members".into(),
            ));
        }
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read_file("certificate", cert)?,
                read_file("key", key)?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "an etcd client certificate needs both a certificate file and a key file".into(),
            ));
        }
    }
    Ok(Some(tls))
}

fn kv(client: &etcd_client::Client) -> KvClient {
    client
        .kv_client()
        .max_decoding_message_size(MAX_RESPONSE_BYTES)
}

impl EtcdStore {
    /// Connects to the cluster and checks it answers, so a wrong address or a cluster
    /// without quorum fails start-up with [`Error::Unavailable`] instead of later.
    pub async fn connect(config: EtcdConfig) -> Result<Self> {
        if config.endpoints.is_empty() {
            return Err(Error::Config("no etcd endpoints were given".into()));
        }
        for e in &config.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "etcd endpoint {e} must start with http:// or https://"
                )));
            }
        }
        let endpoints = config.endpoints.join(",");
        // "Require leader" makes a member without a leader refuse at once ("no leader")
        // rather than let requests wait out the timeout, and ends watches on a member cut
        // off from the cluster, as kube-apiserver asks for its watches.
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            .with_require_leader(true);
        if let Some(tls) = tls_options(&config)? {
            options = options.with_tls(tls);
        }
        let members = Arc::new(
            Members::connect(&config.endpoints, &options)
                .await
                .map_err(|e| errors::classify(&e, &endpoints).into_error("", 0))?,
        );
        let hub = hub::spawn(members.clone(), endpoints.clone(), watch::convert);
        let store = Self {
            members,
            hub,
            endpoints,
            compacted: Arc::new(AtomicI64::new(0)),
        };
        store.header_revision().await?;
        Ok(store)
    }

    /// A range read on whichever member answers.
    async fn range(
        &self,
        key: Vec<u8>,
        options: GetOptions,
    ) -> Result<GetResponse, etcd_client::Error> {
        self.members
            .run(Call::Idempotent, |c| {
                let (key, options) = (key.clone(), options.clone());
                async move { kv(&c).get(key, Some(options)).await }
            })
            .await
    }

    /// A transaction, retried on another member only if it certainly did not run.
    async fn txn_raw(&self, txn: Txn) -> Result<TxnResponse, etcd_client::Error> {
        self.members
            .run(Call::Mutation, |c| {
                let txn = txn.clone();
                async move { kv(&c).txn(txn).await }
            })
            .await
    }

    fn classify(&self, e: &etcd_client::Error) -> Failure {
        errors::classify(e, &self.endpoints)
    }

    fn known_compacted(&self) -> Revision {
        self.compacted.load(Ordering::SeqCst)
    }

    fn saw_compacted(&self, revision: Revision) {
        self.compacted.fetch_max(revision, Ordering::SeqCst);
    }

    /// The cluster's current revision, from the header of a cheap linearizable read.
    async fn header_revision(&self) -> Result<Revision> {
        let resp = self
            .range(b"/".to_vec(), GetOptions::new().with_count_only())
            .await
            .map_err(|e| self.classify(&e).into_error("/", 0))?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Internal("etcd sent a response without a header".into()))
    }

    /// Every `interval`, compacts to the revision seen one interval earlier, like
    /// kube-apiserver's compactor (5 minutes by default). Several servers sharing one
    /// cluster may all do this: compacting to an already compacted revision is refused
    /// by etcd and ignored here.
    pub fn spawn_compactor(&self, interval: Duration) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut previous: Option<Revision> = None;
            loop {
                tokio::time::sleep(interval).await;
                if let Some(target) = previous {
                    match store.compact(target).await {
                        Ok(()) | Err(Error::Compacted { .. }) => {}
                        Err(e) => tracing::warn!(error = %e, "etcd compaction failed"),
                    }
                }
                match store.header_revision().await {
                    Ok(now) => previous = Some(now),
                    Err(e) => tracing::warn!(error = %e, "cannot read the etcd revision"),
                }
            }
        });
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.get_kv(key).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        self.list_kvs(prefix, opts).await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.create_kv(key, value).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        self.update_kv(key, value, expected).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.delete_kv(key, expected).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.watch_prefix(prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let compacted = self
            .members
            .run(Call::Mutation, |c| async move {
                kv(&c)
                    .compact(revision, Some(CompactionOptions::new()))
                    .await
            })
            .await;
        match compacted {
            Ok(_) => {
                self.saw_compacted(revision);
                Ok(())
            }
            Err(e) => Err(match self.classify(&e) {
                // etcd refuses to compact to the revision it is already compacted to;
                // for the store that is done, not an error.
                Failure::Compacted if revision == self.known_compacted() => return Ok(()),
                Failure::Compacted => Error::Compacted {
                    requested: revision,
                    compacted: self.known_compacted().max(revision),
                },
                Failure::FutureRevision => Error::FutureRevision {
                    requested: revision,
                    current: self.header_revision().await?,
                },
                other => other.into_error("", 0),
            }),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.header_revision().await
    }
}
