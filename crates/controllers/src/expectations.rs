//! Controller expectations (upstream's UIDTrackingControllerExpectations): after a
//! controller creates or deletes pods it waits to see those changes in its informer
//! before it syncs that owner again, so a slow watch never makes it act twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Expectations older than this are given up on (upstream: 5 minutes).
const TTL: Duration = Duration::from_secs(300);

struct Pending {
    creations: i64,
    deletions: HashSet<String>,
    set_at: Instant,
}

#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Whether the owner may be synced: nothing is pending, or what is pending is stale.
    pub fn satisfied(&self, owner: &str) -> bool {
        match self.pending.lock().get(owner) {
            None => true,
            Some(p) => (p.creations <= 0 && p.deletions.is_empty()) || p.set_at.elapsed() > TTL,
        }
    }

    pub fn expect_creations(&self, owner: &str, count: usize) {
        self.pending.lock().insert(
            owner.to_string(),
            Pending {
                creations: count as i64,
                deletions: HashSet::new(),
                set_at: Instant::now(),
            },
        );
    }

    /// Expects the deletion of the pods with these `namespace/name` keys.
    pub fn expect_deletions(&self, owner: &str, pods: impl IntoIterator<Item = String>) {
        self.pending.lock().insert(
            owner.to_string(),
            Pending {
                creations: 0,
                deletions: pods.into_iter().collect(),
                set_at: Instant::now(),
            },
        );
    }

    pub fn creation_observed(&self, owner: &str) {
        if let Some(p) = self.pending.lock().get_mut(owner) {
            p.creations -= 1;
        }
    }

    pub fn deletion_observed(&self, owner: &str, pod: &str) {
        if let Some(p) = self.pending.lock().get_mut(owner) {
            p.deletions.remove(pod);
        }
    }

    pub fn forget(&self, owner: &str) {
        self.pending.lock().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn satisfied_once_everything_is_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs"));
        e.expect_creations("ns/rs", 2);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
    }
}
