//! A tiny in-memory `Store` for API server tests that are about the API layer, not
//! storage (the real backends have their own conformance suite).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use store::{
    Error, Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision, Store,
    WatchStream,
};
use tokio::sync::broadcast;

struct Inner {
    rev: Revision,
    data: BTreeMap<String, KeyValue>,
    history: Vec<Event>,
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Event>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        let (tx, _) = broadcast::channel(100_000);
        Arc::new(Self {
            inner: Mutex::new(Inner {
                rev: 0,
                data: BTreeMap::new(),
                history: Vec::new(),
            }),
            tx,
        })
    }

    fn commit(&self, inner: &mut Inner, ev: Event) {
        inner.history.push(ev.clone());
        let _ = self.tx.send(ev);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.inner.lock().data.get(key).cloned())
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let inner = self.inner.lock();
        if opts.revision != 0 && opts.revision != inner.rev {
            return Err(Error::Internal(
                "the memory store lists only at the latest revision".into(),
            ));
        }
        let mut items: Vec<KeyValue> = inner
            .data
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| {
                opts.continue_after
                    .as_deref()
                    .is_none_or(|a| k.as_str() > a)
            })
            .map(|(_, v)| v.clone())
            .collect();
        let total = items.len();
        let more = opts.limit > 0 && total > opts.limit;
        if more {
            items.truncate(opts.limit);
        }
        Ok(ListResult {
            remaining: (total - items.len()) as i64,
            items,
            revision: inner.rev,
            more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let mut inner = self.inner.lock();
        if inner.data.contains_key(key) {
            return Err(Error::AlreadyExists { key: key.into() });
        }
        inner.rev += 1;
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: inner.rev,
            mod_revision: inner.rev,
        };
        inner.data.insert(key.into(), kv.clone());
        self.commit(
            &mut inner,
            Event {
                kind: EventKind::Create,
                kv: kv.clone(),
                prev: None,
            },
        );
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let mut inner = self.inner.lock();
        let Some(prev) = inner.data.get(key).cloned() else {
            return Err(Error::NotFound { key: key.into() });
        };
        if prev.mod_revision != expected {
            return Err(Error::Conflict {
                key: key.into(),
                expected,
                actual: prev.mod_revision,
            });
        }
        inner.rev += 1;
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: prev.create_revision,
            mod_revision: inner.rev,
        };
        inner.data.insert(key.into(), kv.clone());
        self.commit(
            &mut inner,
            Event {
                kind: EventKind::Update,
                kv: kv.clone(),
                prev: Some(prev),
            },
        );
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let mut inner = self.inner.lock();
        let Some(prev) = inner.data.get(key).cloned() else {
            return Err(Error::NotFound { key: key.into() });
        };
        if let Some(e) = expected
            && e != prev.mod_revision
        {
            return Err(Error::Conflict {
                key: key.into(),
                expected: e,
                actual: prev.mod_revision,
            });
        }
        inner.rev += 1;
        inner.data.remove(key);
        let kv = KeyValue {
            mod_revision: inner.rev,
            ..prev.clone()
        };
        self.commit(
            &mut inner,
            Event {
                kind: EventKind::Delete,
                kv: kv.clone(),
                prev: Some(prev),
            },
        );
        Ok(kv)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let inner = self.inner.lock();
        let rx = self.tx.subscribe();
        let start = if after == 0 { inner.rev } else { after };
        let backlog: Vec<Arc<Event>> = inner
            .history
            .iter()
            .filter(|e| e.revision() > start && e.kv.key.starts_with(prefix))
            .cloned()
            .map(Arc::new)
            .collect();
        let last = backlog.last().map(|e| e.revision()).unwrap_or(start);
        let prefix = prefix.to_string();
        let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |e| {
            let keep =
                matches!(&e, Ok(ev) if ev.revision() > last && ev.kv.key.starts_with(&prefix));
            async move {
                if keep {
                    e.ok().map(|e| Ok(Arc::new(e)))
                } else {
                    None
                }
            }
        });
        Ok(futures::stream::iter(backlog.into_iter().map(Ok))
            .chain(live)
            .boxed())
    }

    async fn compact(&self, _revision: Revision) -> Result<()> {
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.inner.lock().rev)
    }
}
