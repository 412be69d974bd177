//! Watch objects shared by every watcher of a change: each store event is decoded
//! once and, when sent as plain JSON, its whole watch line encoded once, however many
//! watchers receive it (upstream's cacher likewise serializes an event once per
//! encoding and shares the bytes).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use store::{KeyValue, Revision};

use super::codec;

/// Revisions per page of decoded objects. Watchers of one type handle an event within
/// moments of each other; one that lags more than a page decodes again.
const PAGE: usize = 1024;

/// An object of a watch event, cheap to clone and shared between watchers.
#[derive(Clone)]
pub struct WatchObject(Arc<Shared>);

struct Shared {
    value: Value,
    /// Its watch lines as ADDED, MODIFIED and DELETED, each encoded by the first
    /// watcher that sends it (watchers with different selectors may see one change as
    /// different types).
    lines: [OnceLock<Bytes>; 3],
}

impl WatchObject {
    pub fn new(value: Value) -> Self {
        Self(Arc::new(Shared {
            value,
            lines: Default::default(),
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

    /// The watch line `{"type":<kind>,"object":<this object>}` and a newline; shared
    /// by every watcher that sends this object as ADDED, MODIFIED or DELETED.
    pub fn watch_line(&self, kind: &str) -> Bytes {
        let slot = match kind {
            "ADDED" => 0,
            "MODIFIED" => 1,
            "DELETED" => 2,
            _ => return watch_line(kind, self.value()),
        };
        self.0.lines[slot]
            .get_or_init(|| watch_line(kind, self.value()))
            .clone()
    }
}

/// `{"type":"<kind>","object":<object>}` and a newline, as serde_json writes it.
pub fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = Vec::with_capacity(512);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(kind.as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut line, object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
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
/// revision never changes), in pages of [`PAGE`] revisions, the latest two kept. A
/// watcher holds the page of the revisions it is at ([`Cursor`]), so finding a change's
/// object takes no lock: once set, a revision's slot is only read, and the cores
/// delivering one change to many watchers share its cache line rather than pass it
/// back and forth.
#[derive(Default)]
pub struct Decoded {
    pages: Mutex<VecDeque<Arc<Page>>>,
}

/// Revisions `first..first + PAGE`, each decoded at most once while the page is kept.
pub struct Page {
    first: Revision,
    slots: Box<[OnceLock<Option<Keyed>>]>,
}

/// A decoded object and the key it was stored under.
type Keyed = (String, WatchObject);

impl Page {
    fn new(first: Revision) -> Arc<Self> {
        Arc::new(Self {
            first,
            slots: (0..PAGE).map(|_| OnceLock::new()).collect(),
        })
    }

    fn get(&self, kv: &KeyValue) -> Option<WatchObject> {
        let slot = &self.slots[(kv.mod_revision - self.first) as usize];
        // Watchers racing here wait for the first one's decode rather than repeat it.
        match slot.get_or_init(|| Some((kv.key.clone(), WatchObject::new(codec::decode(kv).ok()?))))
        {
            Some((key, obj)) if *key == kv.key => Some(obj.clone()),
            // Another key written at this revision (not from one store): not shared.
            Some(_) => Some(WatchObject::new(codec::decode(kv).ok()?)),
            // Not JSON.
            None => None,
        }
    }
}

impl Decoded {
    /// The page starting at `first`; a page older than those kept is made for the
    /// lagging caller alone.
    fn page(&self, first: Revision) -> Arc<Page> {
        let mut pages = self.pages.lock();
        if let Some(p) = pages.iter().find(|p| p.first == first) {
            return p.clone();
        }
        let page = Page::new(first);
        if pages.back().is_none_or(|p| p.first < first) {
            pages.push_back(page.clone());
            while pages.len() > 2 {
                pages.pop_front();
            }
        }
        page
    }

    /// The object stored at `kv`, with its resourceVersion; `None` if it is not JSON.
    /// For a one-off lookup: a revision outside the kept pages is decoded, not kept.
    pub fn get(&self, kv: &KeyValue) -> Option<WatchObject> {
        let first = page_start(kv.mod_revision);
        let page = self.pages.lock().iter().find(|p| p.first == first).cloned();
        match page {
            Some(page) => page.get(kv),
            None => Some(WatchObject::new(codec::decode(kv).ok()?)),
        }
    }
}

/// One watcher's place in [`Decoded`]: the page of its latest revision.
#[derive(Default)]
pub struct Cursor {
    page: Option<Arc<Page>>,
}

impl Cursor {
    /// The object stored at `kv`, decoded by the first watcher that asks.
    pub fn get(&mut self, decoded: &Decoded, kv: &KeyValue) -> Option<WatchObject> {
        let first = page_start(kv.mod_revision);
        let page = match &self.page {
            Some(p) if p.first == first => p,
            _ => self.page.insert(decoded.page(first)),
        };
        page.get(kv)
    }
}

fn page_start(revision: Revision) -> Revision {
    revision - revision.rem_euclid(PAGE as Revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, revision: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(format!(r#"{{"metadata":{{"name":"{key}"}}}}"#)),
            create_revision: revision,
            mod_revision: revision,
        }
    }

    fn same(a: &WatchObject, b: &WatchObject) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    #[test]
    fn watchers_share_one_decode_per_revision() {
        let decoded = Decoded::default();
        let (mut a, mut b) = (Cursor::default(), Cursor::default());
        let x = a.get(&decoded, &kv("x", 5)).unwrap();
        assert!(same(&x, &b.get(&decoded, &kv("x", 5)).unwrap()));
        assert!(same(&x, &decoded.get(&kv("x", 5)).unwrap()));
        assert_eq!(x.value()["metadata"]["resourceVersion"], "5");
        // Another key at a revision already taken is decoded for itself.
        let y = b.get(&decoded, &kv("y", 5)).unwrap();
        assert_eq!(y.value()["metadata"]["name"], "y");
        let not_json = KeyValue {
            value: Bytes::from_static(b"\x00"),
            ..kv("z", 6)
        };
        assert!(a.get(&decoded, &not_json).is_none());
    }

    #[test]
    fn a_lagging_watcher_still_gets_its_objects() {
        let decoded = Decoded::default();
        let (mut lagging, mut current) = (Cursor::default(), Cursor::default());
        let old = lagging.get(&decoded, &kv("a", 3)).unwrap();
        // Two newer pages push the first one out of the kept pages.
        let newer = PAGE as Revision;
        current.get(&decoded, &kv("b", newer + 1)).unwrap();
        current.get(&decoded, &kv("c", 2 * newer + 1)).unwrap();
        assert_eq!(decoded.pages.lock().len(), 2);
        // The lagging cursor keeps its page; a one-off lookup decodes afresh.
        assert!(same(&old, &lagging.get(&decoded, &kv("a", 3)).unwrap()));
        let again = decoded.get(&kv("a", 3)).unwrap();
        assert!(!same(&old, &again));
        assert_eq!(old, again);
        // A page older than those kept is the lagging cursor's alone.
        let d = lagging.get(&decoded, &kv("d", 4)).unwrap();
        assert_eq!(d.value()["metadata"]["resourceVersion"], "4");
        let mut fresh = Cursor::default();
        fresh.get(&decoded, &kv("e", 2)).unwrap();
        let firsts: Vec<Revision> = decoded.pages.lock().iter().map(|p| p.first).collect();
        assert_eq!(firsts, [newer, 2 * newer]);
    }
}
