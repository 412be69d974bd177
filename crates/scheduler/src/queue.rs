//! The scheduling queue, as upstream's: pods wait in an active heap (higher priority
//! first, then oldest), a backoff area after a failed attempt (1 s doubling to 10 s),
//! or the unschedulable area until a cluster change could help them, so failing pods
//! are retried when something changes rather than in a hot loop.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cache::PodInfo;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often even without cluster changes.
const MAX_IN_UNSCHEDULABLE: Duration = Duration::from_secs(300);

/// A queued pod.
#[derive(Clone)]
pub struct Queued {
    pub info: PodInfo,
    pub attempts: u32,
    /// When the pod first entered the queue (for ordering and latency).
    pub since: Instant,
}

struct HeapEntry {
    priority: i32,
    since: Instant,
    seq: u64,
    key: String,
}

impl PartialEq for HeapEntry {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for HeapEntry {}
impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.since.cmp(&self.since))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Active,
    Backoff(Instant),
    Unschedulable(Instant),
    InFlight,
}

#[derive(Default)]
struct State {
    pods: HashMap<String, (Queued, Place)>,
    active: BinaryHeap<HeapEntry>,
    /// When pods leave backoff or the unschedulable area on their own, earliest first,
    /// so a pop looks only at what is due. An entry is stale (and skipped) once its
    /// pod has moved on: it counts only while the pod's place still names its time.
    timers: BinaryHeap<Reverse<(Instant, String, Place)>>,
    seq: u64,
    /// A cluster change happened while pods were being scheduled.
    moved_while_in_flight: bool,
}

impl State {
    /// Puts a pod in `place` (backoff or unschedulable) and arms its timer.
    fn park(&mut self, key: &str, place: Place) {
        let Some((_, p)) = self.pods.get_mut(key) else {
            return;
        };
        *p = place;
        let due = match place {
            Place::Backoff(due) => due,
            Place::Unschedulable(since) => since + MAX_IN_UNSCHEDULABLE,
            Place::Active | Place::InFlight => return,
        };
        self.timers.push(Reverse((due, key.to_string(), place)));
    }

    fn push_active(&mut self, key: &str) {
        let Some((q, place)) = self.pods.get_mut(key) else {
            return;
        };
        *place = Place::Active;
        self.seq += 1;
        self.active.push(HeapEntry {
            priority: q.info.priority,
            since: q.since,
            seq: self.seq,
            key: key.to_string(),
        });
    }
}

#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    ready: Notify,
}

fn backoff(attempts: u32) -> Duration {
    let d = INITIAL_BACKOFF.saturating_mul(1u32 << attempts.saturating_sub(1).min(10));
    d.min(MAX_BACKOFF)
}

impl Queue {
    /// A new or changed pending pod.
    pub fn add(&self, info: PodInfo) {
        let mut s = self.state.lock();
        let key = info.key.clone();
        match s.pods.get_mut(&key) {
            Some((q, place)) => {
                q.info = info;
                // An update to an unschedulable pod may make it schedulable.
                if matches!(place, Place::Unschedulable(_)) {
                    let due = Instant::now() + backoff(q.attempts);
                    s.park(&key, Place::Backoff(due));
                }
            }
            None => {
                s.pods.insert(
                    key.clone(),
                    (
                        Queued {
                            info,
                            attempts: 0,
                            since: Instant::now(),
                        },
                        Place::Active,
                    ),
                );
                s.push_active(&key);
                drop(s);
                self.ready.notify_one();
            }
        }
    }

    /// The pod was bound or deleted: forget it.
    pub fn remove(&self, key: &str) {
        self.state.lock().pods.remove(key);
    }

    /// Waits for the next pod to schedule.
    pub async fn pop(&self) -> Queued {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.state.lock();
                self.flush_locked(&mut s);
                while let Some(e) = s.active.pop() {
                    if let Some((q, place)) = s.pods.get_mut(&e.key)
                        && *place == Place::Active
                    {
                        *place = Place::InFlight;
                        q.attempts += 1;
                        return q.clone();
                    }
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// The pod failed this attempt; it waits for a change (or its backoff when one
    /// happened meanwhile).
    pub fn unschedulable(&self, key: &str) {
        let mut s = self.state.lock();
        let moved = std::mem::take(&mut s.moved_while_in_flight);
        if let Some((q, _)) = s.pods.get(key) {
            let due = Instant::now() + backoff(q.attempts);
            let place = if moved {
                Place::Backoff(due)
            } else {
                Place::Unschedulable(Instant::now())
            };
            s.park(key, place);
        }
    }

    /// The attempt failed for a passing reason (a binding error): retry after backoff.
    pub fn retry(&self, info: PodInfo) {
        let mut s = self.state.lock();
        let key = info.key.clone();
        let entry = s.pods.entry(key.clone()).or_insert_with(|| {
            (
                Queued {
                    info: info.clone(),
                    attempts: 1,
                    since: Instant::now(),
                },
                Place::InFlight,
            )
        });
        entry.0.info = info;
        let due = Instant::now() + backoff(entry.0.attempts);
        s.park(&key, Place::Backoff(due));
    }

    /// Something changed in the cluster that may let unschedulable pods fit.
    pub fn move_all(&self) {
        let mut s = self.state.lock();
        s.moved_while_in_flight = true;
        let now = Instant::now();
        let keys: Vec<String> = s
            .pods
            .iter()
            .filter(|(_, (_, p))| matches!(p, Place::Unschedulable(_)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some((q, _)) = s.pods.get(&k) {
                let due = now + backoff(q.attempts).min(Duration::from_millis(200));
                s.park(&k, Place::Backoff(due));
            }
        }
        drop(s);
        self.ready.notify_one();
    }

    fn flush_locked(&self, s: &mut State) {
        let now = Instant::now();
        while let Some(Reverse((due, _, _))) = s.timers.peek()
            && *due <= now
        {
            let Some(Reverse((_, key, place))) = s.timers.pop() else {
                break;
            };
            if s.pods.get(&key).is_some_and(|(_, p)| *p == place) {
                s.push_active(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
