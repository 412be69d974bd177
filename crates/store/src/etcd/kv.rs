//! Reads and compare-and-swap writes, one etcd request each, shaped like
//! kube-apiserver's etcd3 store (`staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go`):
//! a create is `txn(create_revision == 0 → put)`, an update or guarded delete is
//! `txn(mod_revision == expected → put/delete)`, and a failed guard reads the key back
//! in the same transaction to say why.

use bytes::Bytes;
use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    TxnResponse,
};

use super::EtcdStore;
use super::errors::Failure;
use crate::{Error, KeyValue, ListOptions, ListResult, Result, Revision, check_value_size};

/// etcd's key-value, as the store's.
pub(super) fn to_kv(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's
/// `GetPrefixRangeEnd`); `\0` means "to the end of the keyspace".
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Internal("etcd sent a response without a header".into()))
}

/// The key as the failed branch of a transaction read it back (`None`: absent).
fn read_back(resp: &TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().map(to_kv),
        _ => None,
    })
}

impl EtcdStore {
    pub(super) async fn txn(&self, key: &str, size: usize, txn: Txn) -> Result<TxnResponse> {
        self.txn_raw(txn)
            .await
            .map_err(|e| self.classify(&e).into_error(key, size))
    }

    pub(super) async fn get_kv(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .range(key.as_bytes().to_vec(), GetOptions::new())
            .await
            .map_err(|e| self.classify(&e).into_error(key, 0))?;
        Ok(resp.kvs().first().map(to_kv))
    }

    pub(super) async fn list_kvs(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let end = prefix_end(prefix.as_bytes());
        // A continue key resumes just after itself, as upstream's continue tokens do by
        // appending "\0" to the last key returned.
        let start = match &opts.continue_after {
            Some(after) if after.as_str() >= prefix => {
                let mut k = after.as_bytes().to_vec();
                k.push(0);
                k
            }
            _ => prefix.as_bytes().to_vec(),
        };
        let mut get = GetOptions::new().with_range(end);
        if opts.limit > 0 {
            get = get.with_limit(opts.limit as i64);
        }
        if opts.revision > 0 {
            get = get.with_revision(opts.revision);
        }
        let resp = match self.range(start, get).await {
            Ok(r) => r,
            Err(e) => return Err(self.revision_error(&e, prefix, opts.revision).await),
        };
        let items: Vec<KeyValue> = resp.kvs().iter().map(to_kv).collect();
        let revision = if opts.revision > 0 {
            opts.revision
        } else {
            resp.header().map(|h| h.revision()).unwrap_or_default()
        };
        // `count` is every key in the range at that revision, so the rest is what the
        // page did not hold (upstream's remainingItemCount).
        let more = resp.more();
        let remaining = if more {
            resp.count() - items.len() as i64
        } else {
            0
        };
        Ok(ListResult {
            items,
            revision,
            more,
            remaining,
        })
    }

    /// A read at `requested` failed: say whether the revision is gone, not yet there,
    /// or the cluster is the problem.
    pub(super) async fn revision_error(
        &self,
        e: &etcd_client::Error,
        key: &str,
        requested: Revision,
    ) -> Error {
        match self.classify(e) {
            Failure::Compacted => Error::Compacted {
                requested,
                compacted: self.known_compacted().max(requested + 1),
            },
            Failure::FutureRevision => match self.header_revision().await {
                Ok(current) => Error::FutureRevision { requested, current },
                Err(e) => e,
            },
            other => other.into_error(key, 0),
        }
    }

    pub(super) async fn create_kv(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let size = value.len();
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.txn(key, size, txn).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_string(),
            });
        }
        let revision = header_revision(&resp)?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    pub(super) async fn update_kv(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        let size = value.len();
        // `create_revision > 0` keeps an absent key (mod revision 0) from matching an
        // expected revision of 0: an update never creates.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key, CompareOp::Equal, expected),
                Compare::create_revision(key, CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(
                key,
                value.to_vec(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.txn(key, size, txn).await?;
        if !resp.succeeded() {
            return Err(match read_back(&resp) {
                None => Error::NotFound {
                    key: key.to_string(),
                },
                Some(kv) => Error::Conflict {
                    key: key.to_string(),
                    expected,
                    actual: kv.mod_revision,
                },
            });
        }
        let revision = header_revision(&resp)?;
        let create_revision = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Put(p) => p.prev_key().map(|kv| kv.create_revision()),
                _ => None,
            })
            .ok_or_else(|| Error::Internal(format!("etcd did not return {key}'s prior value")))?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    pub(super) async fn delete_kv(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<KeyValue> {
        let delete = TxnOp::delete(key, Some(DeleteOptions::new().with_prev_key()));
        let txn = match expected {
            Some(expected) => Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                .and_then([delete])
                .or_else([TxnOp::get(key, None)]),
            None => Txn::new().and_then([delete]),
        };
        let resp = self.txn(key, 0, txn).await?;
        if !resp.succeeded() {
            return Err(match read_back(&resp) {
                None => Error::NotFound {
                    key: key.to_string(),
                },
                Some(kv) => Error::Conflict {
                    key: key.to_string(),
                    expected: expected.unwrap_or_default(),
                    actual: kv.mod_revision,
                },
            });
        }
        let revision = header_revision(&resp)?;
        let deleted = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().map(to_kv),
            _ => None,
        });
        match deleted {
            Some(kv) => Ok(KeyValue {
                mod_revision: revision,
                ..kv
            }),
            // Nothing was there (unguarded delete, or a guard of 0 on an absent key).
            None => Err(Error::NotFound {
                key: key.to_string(),
            }),
        }
    }
}
