//! Watch objects shared by every watcher of a change: each store event is decoded
//! once and, when sent as plain JSON, encoded once, however many watchers receive it
//! (upstream's cacher likewise serializes an event once per encoding).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use store::{KeyValue, Revision};

use super::codec;

/// Recent decoded objects kept for watchers still to see them. Watchers of one type
/// handle an event within moments of each other; one that lags further decodes again.
const KEEP: usize = 1024;

/// An object of a watch event, cheap to clone and shared between watchers.
#[derive(Clone)]
pub struct WatchObject(Arc<Shared>);

struct Shared {
    value: Value,
    json: OnceLock<Bytes>,
}

impl WatchObject {
    pub fn new(value: Value) -> Self {
        Self(Arc::new(Shared {
            value,
            json: OnceLock::new(),
        }))
    }

    pub fn value(&self) -> &Value {
        &self.0.value
    }

    pub fn into_value(self) -> Value {
        match Arc::try_unwrap(self.0) {
            Ok(shared) => shared.value,
            Err(shared) => shared.value.clone(),
        }
    }

    /// The object as JSON, encoded by the first watcher that asks.
    pub fn json(&self) -> &Bytes {
        self.0
            .json
            .get_or_init(|| Bytes::from(serde_json::to_vec(&self.0.value).unwrap_or_default()))
    }
}

impl PartialEq for WatchObject {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl fmt::Debug for WatchObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

impl fmt::Display for WatchObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

/// Decoded objects by the revision that wrote them (a store value at one mod
/// revision never changes), the most recent [`KEEP`] of them.
#[derive(Default)]
pub struct Decoded {
    inner: Mutex<Recent>,
}

#[derive(Default)]
struct Recent {
    by_revision: HashMap<Revision, (String, WatchObject)>,
    order: VecDeque<Revision>,
}

impl Decoded {
    /// The object stored at `kv`, with its resourceVersion; `None` if it is not JSON.
    pub fn get(&self, kv: &KeyValue) -> Option<WatchObject> {
        if let Some((key, obj)) = self.inner.lock().by_revision.get(&kv.mod_revision)
            && *key == kv.key
        {
            return Some(obj.clone());
        }
        // Decoded outside the lock; two watchers racing here both decode, harmlessly.
        let obj = WatchObject::new(codec::decode(kv).ok()?);
        let mut recent = self.inner.lock();
        if recent
            .by_revision
            .insert(kv.mod_revision, (kv.key.clone(), obj.clone()))
            .is_none()
        {
            recent.order.push_back(kv.mod_revision);
            while recent.order.len() > KEEP {
                if let Some(old) = recent.order.pop_front() {
                    recent.by_revision.remove(&old);
                }
            }
        }
        Some(obj)
    }
}
