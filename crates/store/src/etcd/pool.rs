//! One connection per etcd member, with requests pinned to one member and moved to the
//! next when it cannot be reached, like etcd's own Go client (clientv3's pinned
//! endpoint and retry interceptor).
//!
//! A load-balanced channel over all members is not enough: it keeps sending a share of
//! requests to a member that is down, so one dead member out of three would fail some
//! writes although the cluster has quorum.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::{Client, ConnectOptions, Error as ClientError};
use tonic::Code;

/// Whether a request may run twice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    /// Reads: any failure of the member is worth retrying on another.
    Idempotent,
    /// Writes: retried only when the member certainly did not act on them.
    Mutation,
}

struct Member {
    url: String,
    client: Client,
}

pub(super) struct Members {
    members: Vec<Member>,
    /// The member requests go to first.
    pinned: AtomicUsize,
}

/// The member could not be reached at all: the request never left this process.
fn not_sent(e: &ClientError) -> bool {
    match e {
        ClientError::TransportError(_) | ClientError::IoError(_) => true,
        ClientError::GRpcStatus(s) => {
            let m = s.message();
            s.code() == Code::Unavailable
                && (m.contains("connect")
                    // etcd refuses before acting when the client requires a leader.
                    || m.contains("no leader"))
        }
        _ => false,
    }
}

/// The member failed in a way another member may not: worth moving to the next one.
fn member_failed(e: &ClientError) -> bool {
    match e {
        ClientError::TransportError(_) | ClientError::IoError(_) => true,
        ClientError::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded
        ),
        _ => false,
    }
}

impl Members {
    /// Clients for each member; connections open lazily on first use.
    pub(super) async fn connect(
        endpoints: &[String],
        options: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        let mut members = Vec::with_capacity(endpoints.len());
        for url in endpoints {
            let client = Client::connect([url], Some(options.clone())).await?;
            members.push(Member {
                url: url.clone(),
                client,
            });
        }
        Ok(Self {
            members,
            pinned: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on the pinned member, moving on to the next member while it fails in a
    /// way that allows it, each member at most once. The error returned is the most
    /// telling one: an answer from a live member ("no leader") beats "connection
    /// refused" from a dead one.
    pub(super) async fn run<T, F, Fut>(&self, call: Call, mut f: F) -> Result<T, ClientError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let n = self.members.len();
        let first = self.pinned.load(Ordering::Relaxed) % n;
        let mut best: Option<ClientError> = None;
        for step in 0..n {
            let i = (first + step) % n;
            let member = &self.members[i];
            match f(member.client.clone()).await {
                Ok(v) => {
                    self.pinned.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) => {
                    let moved_on = member_failed(&e);
                    if moved_on {
                        tracing::debug!(member = %member.url, error = %e, "etcd member failed");
                        self.pinned.store((i + 1) % n, Ordering::Relaxed);
                    }
                    // A write that may have happened is not retried: its outcome is
                    // unknown, and that is what the caller must hear.
                    if !(moved_on && (call == Call::Idempotent || not_sent(&e))) {
                        return Err(e);
                    }
                    let unreachable = matches!(&e, ClientError::TransportError(_))
                        || matches!(&e, ClientError::GRpcStatus(s) if s.message().contains("connect"));
                    if best.is_none() || !unreachable {
                        best = Some(e);
                    }
                }
            }
        }
        Err(best.expect("at least one member was tried"))
    }
}
