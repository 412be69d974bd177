//! Container probes as upstream's prober: one task per probe of a running container,
//! each on its own period, feeding results the worker reads on every relist.
//!
//! Liveness starts as success, readiness as failure and startup as unknown; a
//! result changes only after successThreshold (or failureThreshold) equal results in
//! a row; nothing is probed before initialDelaySeconds since the container started;
//! the startup probe gates the other two until it succeeds, then stops. A liveness or
//! startup failure stops its task and asks the worker to kill the container.

pub mod action;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Probe;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use self::action::{Outcome, Target};
use super::events::Recorder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    /// As upstream's events name it: "Liveness probe failed: …".
    pub fn title(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    /// As upstream's Killing event names it: "failed liveness probe".
    pub fn lower(self) -> &'static str {
        match self {
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
            Kind::Startup => "startup",
        }
    }
}

/// A probe's timings with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Settings {
    pub fn of(p: &Probe, kind: Kind) -> Self {
        let secs = |v: Option<i32>, default: u64| {
            Duration::from_secs(v.map_or(default, |v| v.max(0) as u64))
        };
        let count = |v: Option<i32>, default: u32| v.map_or(default, |v| v.max(1) as u32);
        Settings {
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(p.timeout_seconds, 1).max(Duration::from_secs(1)),
            // Validation insists on 1 for liveness and startup; be as strict here.
            success_threshold: match kind {
                Kind::Readiness => count(p.success_threshold, 1),
                _ => 1,
            },
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// Upstream's probe worker state, without the I/O: when to probe, and what a run of
/// results means.
#[derive(Debug)]
pub struct Tracker {
    kind: Kind,
    settings: Settings,
    /// The published result; `None` is unknown (a startup probe before its verdict).
    result: Option<bool>,
    last: Option<bool>,
    run: u32,
}

impl Tracker {
    pub fn new(kind: Kind, settings: Settings) -> Self {
        let result = match kind {
            Kind::Liveness => Some(true),
            Kind::Readiness => Some(false),
            Kind::Startup => None,
        };
        Tracker {
            kind,
            settings,
            result,
            last: None,
            run: 0,
        }
    }

    #[cfg(test)]
    pub fn result(&self) -> Option<bool> {
        self.result
    }

    /// Whether to probe now: `since_start` since the container started (whole
    /// seconds against initialDelaySeconds, as upstream), `started` whether the
    /// startup probe (if any) has succeeded.
    pub fn due(&self, since_start: Duration, started: bool) -> bool {
        let gate = match self.kind {
            Kind::Startup => !started,
            _ => started,
        };
        gate && since_start.as_secs() >= self.settings.initial_delay.as_secs()
    }

    /// Records one probe's result; the new published result when it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if self.last == Some(ok) {
            self.run += 1;
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let needed = if ok {
            self.settings.success_threshold
        } else {
            self.settings.failure_threshold
        };
        if self.run < needed {
            return None;
        }
        let changed = self.result != Some(ok);
        self.result = Some(ok);
        if !ok && self.kind != Kind::Readiness {
            // The container is killed: a new one needs the full threshold again.
            self.run = 0;
        }
        changed.then_some(ok)
    }
}

#[derive(Debug, Default)]
struct State {
    started: bool,
    ready: bool,
    /// A liveness or startup failure: the container must be killed.
    failed: Option<(Kind, String)>,
}

struct Shared {
    state: watch::Sender<State>,
    /// Wakes the readiness task when the startup probe succeeds (upstream's manual
    /// trigger), so readiness is not a whole period late.
    started: Notify,
}

/// The probes of one running container; dropping it stops them.
pub struct Probes {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Probes {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What a restarted kubelet knows of a container it adopted: how long it has run
/// and what its probes last said (as reported in the pod's status).
#[derive(Debug, Clone, Copy, Default)]
pub struct Resumed {
    pub running_for: Duration,
    pub started: bool,
    pub ready: bool,
}

impl Probes {
    /// Starts the container's probes; `None` when it has none (it is started and
    /// ready as soon as it runs).
    pub fn start(target: Target, events: Recorder) -> Option<Probes> {
        Self::start_with(target, events, None)
    }

    /// The probes of a container that ran before this kubelet: timings count from
    /// its start, and the last reported started/ready hold until a probe says
    /// otherwise (upstream starts readiness over as failed, which takes a running
    /// pod out of its endpoints at every kubelet restart: kubernetes#100277).
    pub fn start_with(
        target: Target,
        events: Recorder,
        resumed: Option<Resumed>,
    ) -> Option<Probes> {
        let c = &target.container;
        let probes = [
            (Kind::Startup, c.startup_probe.clone()),
            (Kind::Liveness, c.liveness_probe.clone()),
            (Kind::Readiness, c.readiness_probe.clone()),
        ];
        if probes.iter().all(|(_, p)| p.is_none()) {
            return None;
        }
        let shared = Arc::new(Shared {
            state: watch::Sender::new(State {
                started: c.startup_probe.is_none() || resumed.is_some_and(|r| r.started),
                ready: c.readiness_probe.is_none() || resumed.is_some_and(|r| r.ready),
                failed: None,
            }),
            started: Notify::new(),
        });
        let tasks = probes
            .into_iter()
            .filter_map(|(kind, p)| Some((kind, p?)))
            .map(|(kind, p)| {
                let (t, s, e) = (target.clone(), shared.clone(), events.clone());
                tokio::spawn(run(kind, p, t, s, e, resumed))
            })
            .collect();
        Some(Probes { shared, tasks })
    }

    fn state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.shared.state.borrow())
    }

    pub fn started(&self) -> bool {
        self.state(|s| s.started)
    }

    /// Ready by the readiness probe (and started).
    pub fn ready(&self) -> bool {
        self.state(|s| s.started && s.ready)
    }

    /// The failed liveness or startup probe and its last output, if one failed.
    pub fn failed(&self) -> Option<(Kind, String)> {
        self.state(|s| s.failed.clone())
    }
}

async fn probe_once(p: &Probe, t: &Target, timeout: Duration) -> Outcome {
    if let Some(a) = &p.exec {
        action::exec(t, a, timeout).await
    } else if let Some(a) = &p.http_get {
        action::http(&t.pod_ip, &t.container, a, timeout).await
    } else if let Some(a) = &p.tcp_socket {
        let c = &t.container;
        action::tcp(&t.pod_ip, c, &a.port, a.host.as_deref(), timeout).await
    } else if let Some(a) = &p.grpc {
        action::grpc(&t.pod_ip, a, timeout).await
    } else {
        Outcome::Failure("missing probe handler".into())
    }
}

async fn run(
    kind: Kind,
    p: Probe,
    t: Target,
    shared: Arc<Shared>,
    events: Recorder,
    resumed: Option<Resumed>,
) {
    let settings = Settings::of(&p, kind);
    let mut tracker = Tracker::new(kind, settings);
    if kind == Kind::Readiness && resumed.is_some_and(|r| r.ready) {
        tracker.result = Some(true);
    }
    let running_for = resumed.map_or(Duration::ZERO, |r| r.running_for);
    let since = Instant::now()
        .checked_sub(running_for)
        .unwrap_or_else(Instant::now);
    let mut tick = tokio::time::interval(settings.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.started.notified(), if kind == Kind::Readiness => {}
        }
        let started = shared.state.borrow().started;
        if kind == Kind::Startup && started {
            return;
        }
        if !tracker.due(since.elapsed(), started) {
            continue;
        }
        let outcome = probe_once(&p, &t, settings.timeout).await;
        let message = match &outcome {
            Outcome::Success => String::new(),
            Outcome::Failure(m) => {
                let text = format!("{} probe failed: {m}", kind.title());
                events
                    .container(&t.container.name, true, "Unhealthy", &text)
                    .await;
                m.clone()
            }
        };
        let Some(now) = tracker.record(outcome == Outcome::Success) else {
            continue;
        };
        match (kind, now) {
            (Kind::Readiness, ready) => shared.state.send_modify(|s| s.ready = ready),
            (Kind::Startup, true) => {
                shared.state.send_modify(|s| s.started = true);
                shared.started.notify_waiters();
                return;
            }
            (_, false) => {
                shared
                    .state
                    .send_modify(|s| s.failed = Some((kind, message)));
                return;
            }
            (Kind::Liveness, true) => {}
        }
    }
}

#[cfg(test)]
mod tests;
