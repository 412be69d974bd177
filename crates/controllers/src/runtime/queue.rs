//! A work queue as client-go's: a key waiting in the queue is there once however often
//! it is added, a key being worked on is not handed to a second worker (it is queued
//! again when that worker is done), and failed keys come back with exponential backoff.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

struct State<T> {
    queue: VecDeque<T>,
    /// Keys waiting to be processed (in `queue`, or to be requeued after processing).
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    base_delay: Duration,
    max_delay: Duration,
}

/// A deduplicating, rate-limited work queue. Cheap to clone.
pub struct Queue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Default for Queue<T> {
    fn default() -> Self {
        // Upstream's default per-item backoff: 5 ms doubling up to 1000 s.
        Self::with_backoff(Duration::from_millis(5), Duration::from_secs(1000))
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_backoff(base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                }),
                ready: Notify::new(),
                base_delay,
                max_delay,
            }),
        }
    }

    pub fn add(&self, key: T) {
        let mut s = self.inner.state.lock();
        if !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.inner.ready.notify_one();
        }
    }

    /// Adds `key` once `delay` has passed.
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let weak: Weak<Inner<T>> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(inner) = weak.upgrade() {
                Queue { inner }.add(key);
            }
        });
    }

    /// Adds `key` after its next backoff delay.
    pub fn add_rate_limited(&self, key: T) {
        let delay = {
            let mut s = self.inner.state.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            let exp = (*n).min(30);
            *n += 1;
            self.inner
                .base_delay
                .saturating_mul(1u32 << exp)
                .min(self.inner.max_delay)
        };
        self.add_after(key, delay);
    }

    /// Clears the backoff of `key` after a success.
    pub fn forget(&self, key: &T) {
        self.inner.state.lock().failures.remove(key);
    }

    /// The next key to work on; call [`Queue::done`] when finished with it.
    pub async fn get(&self) -> T {
        loop {
            let notified = self.inner.ready.notified();
            {
                let mut s = self.inner.state.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    // More work may be waiting for another worker.
                    if !s.queue.is_empty() {
                        self.inner.ready.notify_one();
                    }
                    return key;
                }
            }
            notified.await;
        }
    }

    pub fn done(&self, key: &T) {
        let mut s = self.inner.state.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.inner.ready.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a sync asks of the queue afterwards.
pub type Requeue = Option<Duration>;

/// Runs `workers` loops taking keys from `queue` and syncing them: a failure comes back
/// with backoff, a success may ask to be looked at again after a delay.
pub async fn run_workers<T, F, Fut, E>(queue: Queue<T>, workers: usize, name: &'static str, sync: F)
where
    T: Clone + Eq + Hash + Send + std::fmt::Display + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Requeue, E>> + Send,
    E: std::fmt::Display,
{
    let loops = (0..workers.max(1)).map(|_| {
        let queue = queue.clone();
        let sync = sync.clone();
        async move {
            loop {
                let key = queue.get().await;
                match sync(key.clone()).await {
                    Ok(again) => {
                        queue.forget(&key);
                        if let Some(after) = again {
                            queue.add_after(key.clone(), after);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(controller = name, key = %key, error = %e, "sync failed; retrying");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        }
    });
    futures::future::join_all(loops).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_queued_once_and_not_worked_on_twice() {
        let q = Queue::<&str>::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let a = q.get().await;
        assert_eq!(a, "a");
        // Added again while processing: waits until done.
        q.add("a");
        assert_eq!(q.get().await, "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await, "a");
    }

    #[tokio::test]
    async fn failures_back_off_exponentially() {
        let q = Queue::<&str>::with_backoff(Duration::from_millis(10), Duration::from_secs(1));
        q.add_rate_limited("k");
        q.add_rate_limited("k");
        let start = tokio::time::Instant::now();
        assert_eq!(q.get().await, "k");
        assert!(start.elapsed() >= Duration::from_millis(10));
        q.done(&"k");
        assert_eq!(q.get().await, "k");
        assert!(start.elapsed() >= Duration::from_millis(20));
        q.forget(&"k");
        assert!(q.inner.state.lock().failures.is_empty());
    }
}
