//! Live events for many watchers: a bounded log that one producer appends to and every
//! watcher reads at its own position.
//!
//! A watcher that wakes takes every event it has not seen under one read lock, as
//! shared `Arc`s, and hands them out from its own queue. A broadcast channel instead
//! costs, per event and per watcher, a slot lock, a shared counter and a copy, which
//! with a thousand watchers on two cores was most of the cost of delivery.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use parking_lot::RwLock;
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

use crate::{Event, Revision};

/// Events a watcher takes per wake-up at most, so a far-behind watcher holds the read
/// lock (and so the producer) only briefly.
const TAKE: usize = 1024;

pub(crate) struct Log {
    ring: RwLock<Ring>,
    /// The sequence number the next event will get, readable without the lock, so an
    /// idle watcher checks for news without touching it.
    end: AtomicU64,
    closed: AtomicBool,
    notify: Arc<Notify>,
    capacity: usize,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    /// The sequence number of `events[0]`.
    first: u64,
}

impl Log {
    /// A log keeping the newest `capacity` events; a watcher further behind is lagging.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: RwLock::new(Ring {
                events: VecDeque::new(),
                first: 0,
            }),
            end: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            notify: Arc::new(Notify::new()),
            capacity: capacity.max(1),
        })
    }

    /// Appends `events` (in revision order) and wakes the waiting watchers once.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = Arc<Event>>) {
        let mut ring = self.ring.write();
        ring.events.extend(events);
        while ring.events.len() > self.capacity {
            ring.events.pop_front();
            ring.first += 1;
        }
        let end = ring.first + ring.events.len() as u64;
        drop(ring);
        self.end.store(end, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Ends the log: watchers get what was published, then [`Live::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// A follower of every event published from now on under `prefix`, new to it once
    /// its revision is above `last`.
    pub(crate) fn follow(self: &Arc<Self>, prefix: &str, last: Revision) -> Follower {
        let ring = self.ring.read();
        let next = ring.first + ring.events.len() as u64;
        drop(ring);
        Follower {
            log: self.clone(),
            next,
            prefix: prefix.to_string(),
            ready: VecDeque::new(),
            last,
            seen: last,
            wait: None,
        }
    }
}

/// What a [`Follower`] has next.
pub(crate) enum Live {
    Event(Arc<Event>),
    /// The follower fell this many events behind the log's capacity and lost them.
    Lagged(u64),
    /// The log was closed and everything in it delivered.
    Closed,
}

/// One watcher's position in a [`Log`].
pub(crate) struct Follower {
    log: Arc<Log>,
    /// The sequence number of the next event to take from the log.
    next: u64,
    prefix: String,
    /// Events taken from the log and not handed out yet.
    ready: VecDeque<Arc<Event>>,
    /// The revision after which events are new to this watcher.
    pub(crate) last: Revision,
    /// The newest revision the log has shown this follower, under any prefix.
    pub(crate) seen: Revision,
    wait: Option<Pin<Box<OwnedNotified>>>,
}

enum Took {
    Some,
    Nothing,
    Lagged(u64),
    Closed,
}

impl Follower {
    /// The next event under the prefix; `Pending` (with a wake-up registered) when the
    /// follower has caught up with the log.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Live> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                self.last = ev.revision();
                return Poll::Ready(Live::Event(ev));
            }
            if let Some(wait) = self.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            match self.take() {
                Took::Some => continue,
                Took::Lagged(n) => return Poll::Ready(Live::Lagged(n)),
                Took::Closed => return Poll::Ready(Live::Closed),
                Took::Nothing => {}
            }
            // Register for the next publish before looking again, so one that lands
            // in between is not missed; registering only when idle keeps a busy
            // follower off the notifier's lock.
            let mut wait = Box::pin(self.log.notify.clone().notified_owned());
            wait.as_mut().enable();
            match self.take() {
                Took::Some => continue,
                Took::Lagged(n) => return Poll::Ready(Live::Lagged(n)),
                Took::Closed => return Poll::Ready(Live::Closed),
                Took::Nothing => self.wait = Some(wait),
            }
        }
    }

    /// Moves the events after `next` (at most [`TAKE`]) that are new and under the
    /// prefix into `ready`. `Some` means it moved on in the log, perhaps past events
    /// of other prefixes only.
    fn take(&mut self) -> Took {
        let log = &*self.log;
        // `closed` before `end`: the producer sets them the other way round, so a
        // closed log read here shows every event it will ever have.
        let closed = log.closed.load(Ordering::Acquire);
        if log.end.load(Ordering::Acquire) <= self.next {
            return if closed { Took::Closed } else { Took::Nothing };
        }
        let ring = log.ring.read();
        if self.next < ring.first {
            return Took::Lagged(ring.first - self.next);
        }
        let from = (self.next - ring.first) as usize;
        let upto = ring.events.len().min(from + TAKE);
        for ev in ring.events.range(from..upto) {
            let revision = ev.revision();
            self.seen = self.seen.max(revision);
            if revision > self.last && ev.kv.key.starts_with(&self.prefix) {
                self.ready.push_back(ev.clone());
            }
        }
        self.next = ring.first + upto as u64;
        Took::Some
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;
    use crate::{EventKind, KeyValue};

    fn event(revision: Revision, key: &str) -> Arc<Event> {
        let kv = KeyValue {
            key: key.into(),
            value: bytes::Bytes::from_static(b"v"),
            create_revision: revision,
            mod_revision: revision,
        };
        Arc::new(Event {
            kind: EventKind::Create,
            kv,
            prev: None,
        })
    }

    /// The follower's next item if it has one now.
    fn now(f: &mut Follower) -> Option<Live> {
        poll_fn(|cx| f.poll_next(cx).map(Some))
            .now_or_never()
            .flatten()
    }

    fn revision(item: Option<Live>) -> Revision {
        match item {
            Some(Live::Event(ev)) => ev.revision(),
            _ => panic!("expected an event"),
        }
    }

    #[test]
    fn followers_get_new_events_under_their_prefix_only() {
        let log = Log::new(8);
        log.publish([event(1, "/a/early")]);
        let mut f = log.follow("/a/", 1);
        log.publish([event(2, "/a/x"), event(3, "/b/x"), event(4, "/a/y")]);
        assert_eq!(revision(now(&mut f)), 2);
        assert_eq!(revision(now(&mut f)), 4);
        assert!(now(&mut f).is_none());
        // Other prefixes' events still tell how far the log has got.
        assert_eq!(f.seen, 4);
        // Events at or below `last` were delivered another way (replay) and are skipped.
        let mut g = log.follow("/a/", 6);
        log.publish([event(5, "/a/z"), event(7, "/a/w")]);
        assert_eq!(revision(now(&mut g)), 7);
    }

    #[test]
    fn a_follower_too_far_behind_lags() {
        let log = Log::new(2);
        let mut f = log.follow("", 0);
        log.publish([event(1, "k1"), event(2, "k2"), event(3, "k3")]);
        assert!(matches!(now(&mut f), Some(Live::Lagged(1))));
    }

    #[test]
    fn a_closed_log_delivers_what_it_has_then_ends() {
        let log = Log::new(8);
        let mut f = log.follow("", 0);
        log.publish([event(1, "k1")]);
        log.close();
        assert_eq!(revision(now(&mut f)), 1);
        assert!(matches!(now(&mut f), Some(Live::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_followers_wake_on_publish() {
        let log = Log::new(8);
        let mut waiting = vec![];
        let mut parked = vec![];
        for _ in 0..50 {
            let mut f = log.follow("", 0);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut tx = Some(tx);
            parked.push(rx);
            waiting.push(tokio::spawn(poll_fn(move |cx| {
                let next = f.poll_next(cx);
                // Says when it waits, so the publish below must wake it.
                if next.is_pending()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
                next
            })));
        }
        for rx in parked {
            rx.await.expect("follower waits");
        }
        log.publish([event(1, "k1")]);
        for w in waiting {
            let got = tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .expect("woken within the deadline")
                .expect("task");
            assert_eq!(revision(Some(got)), 1);
        }
    }
}
