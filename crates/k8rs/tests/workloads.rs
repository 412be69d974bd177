//! Workloads on a real server with hollow nodes, driven by kubectl: the scheduler binds
//! pods, controllers run DaemonSets, Jobs and CronJobs, and unschedulable pods say why.

mod support;

use std::time::Duration;

use support::{Server, wait_for};

const DAEMONSET: &str = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},
 "spec":{"selector":{"matchLabels":{"app":"agent"}},
  "template":{"metadata":{"labels":{"app":"agent"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}"#;

const JOB: &str = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"pi"},
 "spec":{"completions":2,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}}"#;

const HUGE_POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"huge"},
 "spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":"64"}}}]}}"#;

fn apply(s: &Server, manifest: &str) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn daemonset_job_and_unschedulable_pod_on_hollow_nodes() {
    let s = Server::start();
    let _nodes = s.hollow_nodes(5, &["--job-runtime", "0.2"]);
    let nodes = s.kubectl_ok(&["get", "nodes"]);
    assert!(
        nodes.contains("STATUS") && nodes.contains("VERSION"),
        "{nodes}"
    );

    apply(&s, DAEMONSET);
    wait_for("5 daemon pods running", Duration::from_secs(60), || {
        let out = s.kubectl_ok(&["get", "pods", "-l", "app=agent", "--no-headers"]);
        (out.lines().filter(|l| l.contains("Running")).count() == 5).then_some(())
    });
    let ds = s.kubectl_ok(&["get", "ds", "agent", "--no-headers"]);
    assert!(
        ds.split_whitespace()
            .take(6)
            .eq(["agent", "5", "5", "5", "5", "5"]),
        "{ds}"
    );

    apply(&s, JOB);
    wait_for("job complete", Duration::from_secs(60), || {
        let out = s.kubectl_ok(&["get", "job", "pi", "-o", "jsonpath={.status.succeeded}"]);
        (out == "2").then_some(())
    });
    let jobs = s.kubectl_ok(&["get", "jobs"]);
    assert!(jobs.contains("Complete") && jobs.contains("2/2"), "{jobs}");

    apply(&s, HUGE_POD);
    let msg = wait_for("FailedScheduling", Duration::from_secs(60), || {
        let out = s.kubectl_ok(&[
            "get",
            "pod",
            "huge",
            "-o",
            "jsonpath={.status.conditions[0].message}",
        ]);
        (!out.is_empty()).then_some(out)
    });
    assert!(
        msg.starts_with("0/5 nodes are available: 5 Insufficient cpu."),
        "{msg}"
    );
    let events = s.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=FailedScheduling",
    ]);
    assert!(events.contains("FailedScheduling"), "{events}");
}
