//! etcd's answers turned into the store's typed errors. etcd reports most conditions
//! as gRPC status codes with fixed message strings (`rpctypes` in etcd's source), so
//! the mapping matches on both, as kube-apiserver's etcd3 storage does.

use etcd_client::Error as ClientError;
use tonic::{Code, Status};

use crate::Error;

/// What went wrong, before the caller adds what it was asking for.
#[derive(Debug)]
pub(super) enum Failure {
    /// A read or watch asked for a revision compaction removed.
    Compacted,
    /// A read or watch asked for a revision that has not happened yet.
    FutureRevision,
    /// etcd refused the request for its size (`--max-request-bytes`).
    TooLarge,
    /// The cluster cannot serve requests: no connection, no leader, no quorum.
    Unavailable(String),
    /// Anything else; a bug on one side or the other.
    Other(String),
}

/// The gRPC status inside an etcd-client error, if the server answered at all.
fn status(e: &ClientError) -> Option<&Status> {
    match e {
        ClientError::GRpcStatus(s) => Some(s),
        _ => None,
    }
}

pub(super) fn classify(e: &ClientError, endpoints: &str) -> Failure {
    use ClientError as E;
    let unreachable = |detail: &dyn std::fmt::Display| {
        Failure::Unavailable(format!(
            "the etcd datastore at {endpoints} cannot be reached: {detail}"
        ))
    };
    match e {
        E::TransportError(t) => unreachable(t),
        E::IoError(io) => unreachable(io),
        // The watch request channel closed: the stream's connection is gone.
        E::WatchError(w) => unreachable(w),
        _ => match status(e) {
            Some(s) => classify_status(s, endpoints),
            None => Failure::Other(format!("etcd client: {e}")),
        },
    }
}

fn classify_status(s: &Status, endpoints: &str) -> Failure {
    let msg = s.message();
    if msg.contains("required revision has been compacted") {
        return Failure::Compacted;
    }
    if msg.contains("required revision is a future revision") {
        return Failure::FutureRevision;
    }
    // etcd's `--max-request-bytes` ("request is too large") or gRPC's message limit.
    if msg.contains("request is too large") || msg.contains("larger than max") {
        return Failure::TooLarge;
    }
    let refused = msg.contains("connect") || msg.contains("transport");
    if refused && matches!(s.code(), Code::Unavailable | Code::Unknown) {
        return Failure::Unavailable(format!(
            "the etcd datastore at {endpoints} cannot be reached: {msg}"
        ));
    }
    match s.code() {
        // etcd answers "no leader", "request timed out" and "leader changed" with
        // Unavailable; DeadlineExceeded is our own request timeout.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            let detail = if msg.is_empty() {
                format!("{:?}", s.code())
            } else {
                msg.to_string()
            };
            Failure::Unavailable(format!(
                "the etcd datastore at {endpoints} cannot serve requests: {detail}"
            ))
        }
        code => Failure::Other(format!("etcd answered {code:?}: {msg}")),
    }
}

impl Failure {
    /// The store error for a failure where no revision or key context applies.
    pub(super) fn into_error(self, key: &str, size: usize) -> Error {
        match self {
            Failure::Unavailable(m) => Error::Unavailable(m),
            Failure::TooLarge => Error::TooLarge {
                key: key.to_string(),
                size,
                limit: crate::MAX_VALUE_BYTES,
            },
            Failure::Compacted => Error::Internal(format!(
                "etcd reported a compacted revision for {key} where none was asked for"
            )),
            Failure::FutureRevision => Error::Internal(format!(
                "etcd reported a future revision for {key} where none was asked for"
            )),
            Failure::Other(m) => Error::Internal(m),
        }
    }
}
