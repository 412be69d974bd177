//! Health of the control-plane components, as `kubectl get componentstatuses` shows
//! it. In-process components report here; the store is probed on demand.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

/// The components upstream lists, in its order (etcd is probed, not reported).
pub const REPORTING: &[&str] = &["scheduler", "controller-manager"];

/// A component that has not reported for this long is unhealthy.
const STALE_AFTER: Duration = Duration::from_secs(30);

/// When a component last reported, and what.
type Report = (Instant, Result<(), String>);

#[derive(Default)]
pub struct ComponentHealth {
    last: RwLock<BTreeMap<String, Report>>,
}

impl ComponentHealth {
    /// A component saying how it is.
    pub fn report(&self, name: &str, health: Result<(), String>) {
        self.last
            .write()
            .insert(name.to_string(), (Instant::now(), health));
    }

    /// `Ok` when the component reported healthy recently.
    pub fn status(&self, name: &str) -> Result<(), String> {
        match self.last.read().get(name) {
            None => Err("component has not reported its health".to_string()),
            Some((at, _)) if at.elapsed() > STALE_AFTER => {
                Err(format!("no health report for {}s", at.elapsed().as_secs()))
            }
            Some((_, h)) => h.clone(),
        }
    }
}
