//! Resource usage of the node and its pods, as the kubelet's summary API reports it
//! (`/stats/summary`, stats/v1alpha1) and as `/metrics/resource` exposes it for
//! metrics-server and `kubectl top`. Containers' figures come from CRI
//! ListContainerStats; the node's from /proc (upstream reads the root cgroup through
//! cAdvisor, which on cgroup v2 is the same accounting).

use std::collections::HashMap;
use std::path::Path;

use cri::v1::ContainerState;
use parking_lot::Mutex;

use crate::{Result, Runtime};

/// CPU and memory at one instant; `None` where the source gave nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    /// Nanoseconds since the epoch.
    pub time: i64,
    pub cpu_core_nanos: Option<u64>,
    pub nano_cores: Option<u64>,
    pub working_set_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct ContainerSample {
    pub name: String,
    /// Nanoseconds since the epoch.
    pub start: i64,
    pub usage: Usage,
    pub rootfs_used_bytes: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct PodSample {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub start: i64,
    pub containers: Vec<ContainerSample>,
}

impl PodSample {
    /// The pod's usage: the sum over its containers (the sandbox's pause process is
    /// too small to matter, and upstream's pod cgroup is not one we create).
    pub fn usage(&self) -> Usage {
        let sum = |f: fn(&Usage) -> Option<u64>| {
            self.containers
                .iter()
                .map(|c| f(&c.usage))
                .try_fold(0u64, |acc, v| Some(acc + v?))
        };
        Usage {
            time: self
                .containers
                .iter()
                .map(|c| c.usage.time)
                .max()
                .unwrap_or(0),
            cpu_core_nanos: sum(|u| u.cpu_core_nanos),
            nano_cores: sum(|u| u.nano_cores),
            working_set_bytes: sum(|u| u.working_set_bytes),
            usage_bytes: sum(|u| u.usage_bytes),
            rss_bytes: sum(|u| u.rss_bytes),
            available_bytes: None,
        }
    }
}

/// The node's file system (the agent's data dir).
#[derive(Clone, Debug, Default)]
pub struct FsSample {
    pub capacity_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub node_name: String,
    /// Boot time, nanoseconds since the epoch.
    pub node_start: i64,
    pub node: Usage,
    pub fs: Option<FsSample>,
    pub pods: Vec<PodSample>,
}

/// Remembers each container's (and the node's) cumulative CPU figure so that a rate
/// (usageNanoCores) can be given, as upstream's CRI stats provider does. A rate spans
/// at least `MIN_WINDOW`; samples closer than that reuse the last rate.
#[derive(Default)]
pub struct Sampler {
    previous: Mutex<HashMap<String, Previous>>,
}

#[derive(Clone, Copy)]
struct Previous {
    time: i64,
    cpu: u64,
    rate: Option<u64>,
}

/// The shortest span a CPU rate is computed over.
const MIN_WINDOW_NANOS: i64 = 5_000_000_000;

/// How often the kubelet samples on its own, so a rate is ready when asked
/// (cAdvisor's housekeeping interval).
pub const SAMPLE_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

impl Sampler {
    /// Fills `nano_cores` from an earlier sample of `key`, keeping this one if it
    /// starts a new window.
    fn rate(&self, key: &str, usage: &mut Usage) {
        let Some(cpu) = usage.cpu_core_nanos else {
            return;
        };
        let mut previous = self.previous.lock();
        let prev = previous.get(key).copied();
        let rate = match prev {
            Some(p) if usage.time - p.time >= MIN_WINDOW_NANOS && cpu >= p.cpu => {
                let elapsed = (usage.time - p.time) as u128;
                Some(((cpu - p.cpu) as u128 * 1_000_000_000 / elapsed) as u64)
            }
            Some(p) if usage.time >= p.time && cpu >= p.cpu => {
                usage.nano_cores = usage.nano_cores.or(p.rate);
                return;
            }
            // First sample, or the counter went back (a new container with the id).
            _ => None,
        };
        usage.nano_cores = usage.nano_cores.or(rate);
        let time = usage.time;
        previous.insert(key.to_string(), Previous { time, cpu, rate });
    }

    /// Forgets containers that are gone, so the map does not grow forever.
    fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.previous.lock().retain(|k, _| keep(k));
    }
}

fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// Takes one sample of the node and its running containers.
pub async fn collect(
    runtime: &Runtime,
    node_name: &str,
    data_dir: &Path,
    sampler: &Sampler,
) -> Result<Snapshot> {
    let rt = &runtime.runtime;
    let sandboxes = rt.list_pod_sandbox(None).await?;
    let containers = rt.list_containers(None).await?;
    let mut stats: HashMap<String, cri::v1::ContainerStats> = rt
        .list_container_stats(None)
        .await?
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    let mut pods: HashMap<String, PodSample> = HashMap::new();
    for s in sandboxes {
        let Some(m) = s.metadata else { continue };
        pods.insert(
            s.id,
            PodSample {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                start: s.created_at,
                containers: Vec::new(),
            },
        );
    }
    let running: std::collections::HashSet<String> = containers
        .iter()
        .filter(|c| c.state == ContainerState::ContainerRunning as i32)
        .map(|c| c.id.clone())
        .collect();
    for c in containers {
        if !running.contains(&c.id) {
            continue;
        }
        let (Some(pod), Some(stat)) = (pods.get_mut(&c.pod_sandbox_id), stats.remove(&c.id)) else {
            continue;
        };
        let cpu = stat.cpu.as_ref();
        let mem = stat.memory.as_ref();
        let mut usage = Usage {
            time: cpu
                .map(|c| c.timestamp)
                .filter(|t| *t > 0)
                .unwrap_or_else(now_nanos),
            cpu_core_nanos: cpu
                .and_then(|c| c.usage_core_nano_seconds.as_ref())
                .map(|v| v.value),
            nano_cores: cpu
                .and_then(|c| c.usage_nano_cores.as_ref())
                .map(|v| v.value),
            working_set_bytes: mem
                .and_then(|m| m.working_set_bytes.as_ref())
                .map(|v| v.value),
            usage_bytes: mem.and_then(|m| m.usage_bytes.as_ref()).map(|v| v.value),
            rss_bytes: mem.and_then(|m| m.rss_bytes.as_ref()).map(|v| v.value),
            available_bytes: mem
                .and_then(|m| m.available_bytes.as_ref())
                .map(|v| v.value),
        };
        sampler.rate(&c.id, &mut usage);
        pod.containers.push(ContainerSample {
            name: c.metadata.map(|m| m.name).unwrap_or_default(),
            start: c.created_at,
            usage,
            rootfs_used_bytes: stat
                .writable_layer
                .and_then(|w| w.used_bytes)
                .map(|v| v.value),
        });
    }
    let mut node = node_usage().unwrap_or_default();
    sampler.rate("", &mut node);
    sampler.retain(&|k| k.is_empty() || running.contains(k));
    let mut pods: Vec<PodSample> = pods
        .into_values()
        .filter(|p| !p.containers.is_empty())
        .collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Snapshot {
        node_name: node_name.to_string(),
        node_start: boot_time().unwrap_or(0),
        node,
        fs: fs_usage(data_dir),
        pods,
    })
}

/// The value of `key` in a `/proc/meminfo`-style text, in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Busy CPU time of all cores from the `cpu` line of /proc/stat, in clock ticks.
fn busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// The node's usage with cAdvisor's definitions: usage is what is not free, the
/// working set leaves out inactive file pages, available is the rest.
fn node_memory(meminfo: &str, usage: &mut Usage) -> Option<()> {
    let total = meminfo_bytes(meminfo, "MemTotal")?;
    let used = total.saturating_sub(meminfo_bytes(meminfo, "MemFree")?);
    let working_set = used.saturating_sub(meminfo_bytes(meminfo, "Inactive(file)").unwrap_or(0));
    usage.usage_bytes = Some(used);
    usage.working_set_bytes = Some(working_set);
    usage.available_bytes = Some(total - working_set);
    usage.rss_bytes = meminfo_bytes(meminfo, "AnonPages");
    Some(())
}

/// /proc/stat counts in USER_HZ, which Linux fixes at 100 on every architecture
/// it supports for this ABI.
const USER_HZ: u64 = 100;

fn node_usage() -> Option<Usage> {
    let mut usage = Usage {
        time: now_nanos(),
        ..Default::default()
    };
    let ticks = busy_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
    usage.cpu_core_nanos = Some(ticks * (1_000_000_000 / USER_HZ));
    node_memory(&std::fs::read_to_string("/proc/meminfo").ok()?, &mut usage);
    Some(usage)
}

fn boot_time() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(secs * 1_000_000_000)
}

fn fs_usage(dir: &Path) -> Option<FsSample> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let block = st.f_frsize;
    Some(FsSample {
        capacity_bytes: st.f_blocks * block,
        available_bytes: st.f_bavail * block,
        used_bytes: (st.f_blocks - st.f_bfree) * block,
        inodes: st.f_files,
        inodes_free: st.f_ffree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_figures_from_proc() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3\nbtime 1700000000\n";
        assert_eq!(busy_ticks(stat), Some(161));
        let meminfo = "MemTotal:       1000 kB\nMemFree:         200 kB\nAnonPages:        50 kB\nInactive(file):  100 kB\n";
        let mut u = Usage::default();
        node_memory(meminfo, &mut u).unwrap();
        assert_eq!(u.usage_bytes, Some(800 * 1024));
        assert_eq!(u.working_set_bytes, Some(700 * 1024));
        assert_eq!(u.available_bytes, Some(300 * 1024));
        assert_eq!(u.rss_bytes, Some(50 * 1024));
    }

    #[test]
    fn rate_from_the_previous_sample() {
        let sampler = Sampler::default();
        let mut first = Usage {
            time: 1_000_000_000,
            cpu_core_nanos: Some(500_000_000),
            ..Default::default()
        };
        sampler.rate("c", &mut first);
        assert_eq!(first.nano_cores, None);
        // Too soon for a window: still no rate.
        let mut soon = Usage {
            time: 2_000_000_000,
            cpu_core_nanos: Some(600_000_000),
            ..Default::default()
        };
        sampler.rate("c", &mut soon);
        assert_eq!(soon.nano_cores, None);
        // Half a core over ten seconds.
        let mut second = Usage {
            time: 11_000_000_000,
            cpu_core_nanos: Some(5_500_000_000),
            ..Default::default()
        };
        sampler.rate("c", &mut second);
        assert_eq!(second.nano_cores, Some(500_000_000));
        // A sample inside the new window reuses that rate.
        let mut third = Usage {
            time: 12_000_000_000,
            cpu_core_nanos: Some(5_600_000_000),
            ..Default::default()
        };
        sampler.rate("c", &mut third);
        assert_eq!(third.nano_cores, Some(500_000_000));
        sampler.retain(&|k| k != "c");
        assert!(sampler.previous.lock().is_empty());
    }

    #[test]
    fn pod_usage_sums_its_containers() {
        let c = |cpu, mem| ContainerSample {
            name: "c".into(),
            start: 0,
            usage: Usage {
                time: 5,
                cpu_core_nanos: Some(cpu),
                working_set_bytes: Some(mem),
                ..Default::default()
            },
            rootfs_used_bytes: None,
        };
        let pod = PodSample {
            name: "p".into(),
            namespace: "default".into(),
            uid: "u".into(),
            start: 0,
            containers: vec![c(10, 100), c(5, 50)],
        };
        let u = pod.usage();
        assert_eq!(
            (u.cpu_core_nanos, u.working_set_bytes, u.nano_cores),
            (Some(15), Some(150), None)
        );
    }
}
