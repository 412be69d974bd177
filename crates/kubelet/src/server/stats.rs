//! `/stats/summary` (stats/v1alpha1 Summary, JSON) and `/metrics/resource` (the
//! Prometheus text metrics-server scrapes), both from one sample of the node.

use std::fmt::Write;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Runtime;
use crate::stats::{Sampler, Snapshot, Usage, collect};

pub struct StatsState {
    pub runtime: Runtime,
    pub node_name: String,
    pub data_dir: PathBuf,
    pub sampler: Sampler,
}

/// Samples every `SAMPLE_PERIOD` so CPU rates are ready when asked; ends with the
/// server (when `state` is gone).
pub async fn sample_forever(state: std::sync::Weak<StatsState>) {
    loop {
        let Some(s) = state.upgrade() else { return };
        if let Err(e) = collect(&s.runtime, &s.node_name, &s.data_dir, &s.sampler).await {
            tracing::debug!(error = %e, "sampling resource usage failed");
        }
        drop(s);
        tokio::time::sleep(crate::stats::SAMPLE_PERIOD).await;
    }
}

async fn snapshot(s: &StatsState) -> Result<Snapshot, Response> {
    collect(&s.runtime, &s.node_name, &s.data_dir, &s.sampler)
        .await
        .map_err(|e| {
            let msg = format!("failed to get stats: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response()
        })
}

pub async fn summary(State(s): State<Arc<StatsState>>) -> Response {
    match snapshot(&s).await {
        Ok(snap) => axum::Json(summary_json(&snap)).into_response(),
        Err(r) => r,
    }
}

pub async fn resource_metrics(State(s): State<Arc<StatsState>>) -> Response {
    let body = match snapshot(&s).await {
        Ok(snap) => resource_text(Some(&snap)),
        Err(_) => resource_text(None),
    };
    let text = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, text)], body).into_response()
}

fn time(nanos: i64) -> Value {
    crate::time::from_nanos(nanos).map_or(Value::Null, Value::String)
}

/// Inserts the fields that are known; upstream omits the others.
fn put(obj: &mut Value, key: &str, v: Option<u64>) {
    if let Some(v) = v {
        obj[key] = json!(v);
    }
}

fn cpu(u: &Usage) -> Value {
    let mut v = json!({"time": time(u.time)});
    put(&mut v, "usageNanoCores", u.nano_cores);
    put(&mut v, "usageCoreNanoSeconds", u.cpu_core_nanos);
    v
}

fn memory(u: &Usage) -> Value {
    let mut v = json!({"time": time(u.time)});
    put(&mut v, "availableBytes", u.available_bytes);
    put(&mut v, "usageBytes", u.usage_bytes);
    put(&mut v, "workingSetBytes", u.working_set_bytes);
    put(&mut v, "rssBytes", u.rss_bytes);
    v
}

pub fn summary_json(snap: &Snapshot) -> Value {
    let mut node = json!({
        "nodeName": snap.node_name,
        "startTime": time(snap.node_start),
        "cpu": cpu(&snap.node),
        "memory": memory(&snap.node),
    });
    if let Some(fs) = &snap.fs {
        let fs = json!({
            "time": time(snap.node.time),
            "availableBytes": fs.available_bytes,
            "capacityBytes": fs.capacity_bytes,
            "usedBytes": fs.used_bytes,
            "inodesFree": fs.inodes_free,
            "inodes": fs.inodes,
            "inodesUsed": fs.inodes - fs.inodes_free,
        });
        node["fs"] = fs.clone();
        node["runtime"] = json!({"imageFs": fs});
    }
    let pods: Vec<Value> = snap
        .pods
        .iter()
        .map(|p| {
            let containers: Vec<Value> = p
                .containers
                .iter()
                .map(|c| {
                    let mut v = json!({
                        "name": c.name,
                        "startTime": time(c.start),
                        "cpu": cpu(&c.usage),
                        "memory": memory(&c.usage),
                    });
                    if let Some(used) = c.rootfs_used_bytes {
                        v["rootfs"] = json!({"time": time(c.usage.time), "usedBytes": used});
                    }
                    v
                })
                .collect();
            let total = p.usage();
            json!({
                "podRef": {"name": p.name, "namespace": p.namespace, "uid": p.uid},
                "startTime": time(p.start),
                "containers": containers,
                "cpu": cpu(&total),
                "memory": memory(&total),
            })
        })
        .collect();
    json!({"node": node, "pods": pods})
}

/// A family's samples: labels, value, timestamp in ms (0: none).
type Samples = [(String, f64, i64)];

/// One metric family: HELP and TYPE lines, then its samples.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &Samples) {
    let _ = writeln!(out, "# HELP {name} [STABLE] {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value, ms) in samples {
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = match ms {
            0 => writeln!(out, "{name}{labels} {value}"),
            ms => writeln!(out, "{name}{labels} {value} {ms}"),
        };
    }
}

/// Prometheus text in upstream's resource-metrics names, labels sorted by name.
pub fn resource_text(snap: Option<&Snapshot>) -> String {
    let mut out = String::new();
    let ms = |nanos: i64| nanos / 1_000_000;
    let secs = |n: u64| n as f64 / 1e9;
    let (mut c_cpu, mut c_mem, mut c_start, mut p_cpu, mut p_mem) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut n_cpu, mut n_mem) = (vec![], vec![]);
    if let Some(snap) = snap {
        if let Some(v) = snap.node.cpu_core_nanos {
            n_cpu.push((String::new(), secs(v), ms(snap.node.time)));
        }
        if let Some(v) = snap.node.working_set_bytes {
            n_mem.push((String::new(), v as f64, ms(snap.node.time)));
        }
        for p in &snap.pods {
            let pod = format!("namespace=\"{}\",pod=\"{}\"", p.namespace, p.name);
            for c in &p.containers {
                let labels = format!("container=\"{}\",{pod}", c.name);
                let u = &c.usage;
                if let Some(v) = u.cpu_core_nanos {
                    c_cpu.push((labels.clone(), secs(v), ms(u.time)));
                }
                if let Some(v) = u.working_set_bytes {
                    c_mem.push((labels.clone(), v as f64, ms(u.time)));
                }
                if c.start > 0 {
                    c_start.push((labels, c.start as f64 / 1e9, 0));
                }
            }
            let u = p.usage();
            if let Some(v) = u.cpu_core_nanos {
                p_cpu.push((pod.clone(), secs(v), ms(u.time)));
            }
            if let Some(v) = u.working_set_bytes {
                p_mem.push((pod, v as f64, ms(u.time)));
            }
        }
    }
    let families: [(&str, &str, &str, &Samples); 7] = [
        (
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the container in core-seconds",
            &c_cpu,
        ),
        (
            "container_memory_working_set_bytes",
            "gauge",
            "Current working set of the container in bytes",
            &c_mem,
        ),
        (
            "container_start_time_seconds",
            "gauge",
            "Start time of the container since unix epoch in seconds",
            &c_start,
        ),
        (
            "node_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the node in core-seconds",
            &n_cpu,
        ),
        (
            "node_memory_working_set_bytes",
            "gauge",
            "Current working set of the node in bytes",
            &n_mem,
        ),
        (
            "pod_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed by the pod in core-seconds",
            &p_cpu,
        ),
        (
            "pod_memory_working_set_bytes",
            "gauge",
            "Current working set of the pod in bytes",
            &p_mem,
        ),
    ];
    for (name, kind, help, samples) in families {
        family(&mut out, name, kind, help, samples);
    }
    let error = [(String::new(), if snap.is_some() { 0.0 } else { 1.0 }, 0)];
    family(
        &mut out,
        "resource_scrape_error",
        "gauge",
        "1 if there was an error while getting container metrics, 0 otherwise",
        &error,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ContainerSample, PodSample};

    fn snap() -> Snapshot {
        let usage = Usage {
            time: 1_700_000_000_000_000_000,
            cpu_core_nanos: Some(2_500_000_000),
            working_set_bytes: Some(4096),
            ..Default::default()
        };
        Snapshot {
            node_name: "n".into(),
            node_start: 1_600_000_000_000_000_000,
            node: usage.clone(),
            fs: None,
            pods: vec![PodSample {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                start: 1_650_000_000_000_000_000,
                containers: vec![ContainerSample {
                    name: "nginx".into(),
                    start: 1_650_000_001_000_000_000,
                    usage,
                    rootfs_used_bytes: Some(10),
                }],
            }],
        }
    }

    #[test]
    fn resource_metrics_as_metrics_server_reads_them() {
        let text = resource_text(Some(&snap()));
        assert!(text.contains(
            "container_cpu_usage_seconds_total{container=\"nginx\",namespace=\"default\",pod=\"web\"} 2.5 1700000000000\n"
        ), "{text}");
        assert!(
            text.contains("node_memory_working_set_bytes 4096 1700000000000\n"),
            "{text}"
        );
        assert!(text.contains("container_start_time_seconds{container=\"nginx\",namespace=\"default\",pod=\"web\"} 1650000001\n"), "{text}");
        assert!(
            text.contains("# TYPE pod_cpu_usage_seconds_total counter\n"),
            "{text}"
        );
        assert!(text.ends_with("resource_scrape_error 0\n"), "{text}");
        assert!(resource_text(None).ends_with("resource_scrape_error 1\n"));
    }

    #[test]
    fn summary_has_upstreams_shape() {
        let v = summary_json(&snap());
        assert_eq!(v["node"]["nodeName"], "n");
        assert_eq!(v["node"]["cpu"]["usageCoreNanoSeconds"], 2_500_000_000u64);
        assert!(v["node"]["cpu"].get("usageNanoCores").is_none());
        let pod = &v["pods"][0];
        assert_eq!(
            pod["podRef"],
            json!({"name": "web", "namespace": "default", "uid": "u1"})
        );
        assert_eq!(pod["containers"][0]["rootfs"]["usedBytes"], 10);
        assert_eq!(pod["memory"]["workingSetBytes"], 4096);
        assert_eq!(pod["startTime"], "2022-04-15T05:20:00Z");
    }
}
