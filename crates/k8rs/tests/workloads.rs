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

    // A CronJob firing at the next minute boundary (cron's finest step), and a Job
    // made from it by hand as `kubectl create job --from` does.
    s.kubectl_ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/1 * * * *",
    ]);
    s.kubectl_ok(&["create", "job", "tick-by-hand", "--from=cronjob/tick"]);
    let by_hand = s.kubectl_ok(&[
        "get",
        "job",
        "tick-by-hand",
        "-o",
        "jsonpath={.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}",
    ]);
    assert_eq!(by_hand, "manual");
    let fired = wait_for("the cronjob fired", Duration::from_secs(90), || {
        let owned = s.kubectl_ok(&[
            "get",
            "jobs",
            "-o",
            "jsonpath={range .items[?(@.metadata.ownerReferences[0].name==\"tick\")]}{.metadata.name}{\"\\n\"}{end}",
        ]);
        // kubectl makes the job by hand owned by the CronJob too.
        owned
            .lines()
            .find(|n| *n != "tick-by-hand")
            .map(str::to_string)
    });
    wait_for(
        "the scheduled job complete",
        Duration::from_secs(60),
        || {
            let out = s.kubectl_ok(&["get", "job", &fired, "-o", "jsonpath={.status.succeeded}"]);
            (out == "1").then_some(())
        },
    );
    let cj = s.kubectl_ok(&["get", "cronjob", "tick"]);
    assert!(
        cj.contains("LAST SCHEDULE") && cj.contains("*/1 * * * *"),
        "{cj}"
    );
    let last = s.kubectl_ok(&[
        "get",
        "cronjob",
        "tick",
        "-o",
        "jsonpath={.status.lastScheduleTime}",
    ]);
    assert!(!last.is_empty(), "{cj}");

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

/// The classic walkthrough on hollow nodes: `kubectl create deployment`, rollout,
/// scale, a new image and `rollout undo`, then deleting a namespace with content.
#[test]
fn deployment_walkthrough_and_namespace_deletion() {
    let s = Server::start();
    let _nodes = s.hollow_nodes(3, &[]);
    s.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=3",
    ]);
    s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let ready = |n: usize| {
        move |s: &Server| {
            let out = s.kubectl_ok(&["get", "pods", "-l", "app=web", "--no-headers"]);
            out.lines().filter(|l| l.contains("Running")).count() == n
        }
    };
    assert!(ready(3)(&s), "{}", s.kubectl_ok(&["get", "pods"]));

    s.kubectl_ok(&["scale", "deployment", "web", "--replicas=10"]);
    wait_for("10 pods running", Duration::from_secs(60), || {
        ready(10)(&s).then_some(())
    });
    s.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    wait_for("back to 3 pods", Duration::from_secs(60), || {
        let out = s.kubectl_ok(&["get", "pods", "-l", "app=web", "--no-headers"]);
        (out.lines().count() == 3 && ready(3)(&s)).then_some(())
    });
    // Upstream's columns, wide included.
    let wide = s.kubectl_ok(&["get", "rs,deploy,pods", "-o", "wide"]);
    for column in [
        "DESIRED",
        "CURRENT",
        "READY",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
        "UP-TO-DATE",
        "AVAILABLE",
        "STATUS",
        "RESTARTS",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ] {
        assert!(wide.contains(column), "{column} missing:\n{wide}");
    }
    let deploy = wide
        .lines()
        .find(|l| l.starts_with("deployment.apps/web "))
        .unwrap_or_default();
    assert!(
        deploy
            .split_whitespace()
            .skip(1)
            .take(3)
            .eq(["3/3", "3", "3"]),
        "{wide}"
    );

    s.kubectl_ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]);
    s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let history = s.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    s.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    s.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let image = s.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.25");
    let rs = s.kubectl_ok(&["get", "rs", "-l", "app=web", "--no-headers"]);
    assert_eq!(rs.lines().count(), 2, "{rs}");

    // Deleting the deployment removes its ReplicaSets and pods (garbage collector).
    s.kubectl_ok(&["delete", "deployment", "web"]);
    wait_for(
        "the deployment's pods gone",
        Duration::from_secs(60),
        || {
            let rs = s.kubectl_ok(&["get", "rs,pods", "-l", "app=web", "-o", "name"]);
            rs.trim().is_empty().then_some(())
        },
    );

    // A namespace and its content go together; kubectl waits for it.
    s.kubectl_ok(&["create", "namespace", "scratch"]);
    s.kubectl_ok(&[
        "-n",
        "scratch",
        "create",
        "configmap",
        "c",
        "--from-literal=a=b",
    ]);
    s.kubectl_ok(&[
        "-n",
        "scratch",
        "create",
        "deployment",
        "d",
        "--image=nginx",
    ]);
    wait_for("scratch pod running", Duration::from_secs(60), || {
        let out = s.kubectl_ok(&["-n", "scratch", "get", "pods", "--no-headers"]);
        out.contains("Running").then_some(())
    });
    s.kubectl_ok(&["delete", "namespace", "scratch", "--timeout=60s"]);
    let gone = s.kubectl_err(&["get", "namespace", "scratch"]);
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );
}

/// Nodes that stop heartbeating go NotReady, get the unreachable taint, and their pods
/// are evicted and replaced on the nodes that remain — with the timeouts shortened
/// through k3s-style component flags.
#[test]
fn pods_move_off_failed_nodes() {
    let s = Server::start_with(support::Opts {
        args: [
            "--kube-controller-manager-arg=node-monitor-grace-period=4s",
            "--kube-controller-manager-arg=node-monitor-period=1s",
            "--kube-apiserver-arg=default-unreachable-toleration-seconds=2",
            "--kube-apiserver-arg=default-not-ready-toleration-seconds=2",
        ]
        .map(String::from)
        .to_vec(),
    });
    let doomed = s.hollow_nodes(2, &["--prefix", "doomed", "--lease-interval", "1"]);
    let _survivors = s.hollow_nodes(2, &["--prefix", "survivor", "--lease-interval", "1"]);
    wait_for("4 nodes Ready", Duration::from_secs(60), || {
        let out = s.kubectl_ok(&["get", "nodes", "--no-headers"]);
        (out.lines().filter(|l| l.contains(" Ready ")).count() == 4).then_some(())
    });
    s.kubectl_ok(&[
        "create",
        "deployment",
        "app",
        "--image=nginx",
        "--replicas=6",
    ]);
    s.kubectl_ok(&["rollout", "status", "deployment/app", "--timeout=60s"]);
    let on_doomed = s.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=app",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert!(on_doomed.contains("doomed"), "spread expected: {on_doomed}");

    doomed.stop();
    wait_for(
        "doomed nodes NotReady and tainted",
        Duration::from_secs(60),
        || {
            let taints = s.kubectl_ok(&[
                "get",
                "node",
                "doomed-0",
                "-o",
                "jsonpath={.spec.taints[*].key}",
            ]);
            let status = s.kubectl_ok(&["get", "node", "doomed-0", "--no-headers"]);
            (taints.contains("node.kubernetes.io/unreachable") && status.contains("NotReady"))
                .then_some(())
        },
    );
    wait_for(
        "6 running pods, all on survivors",
        Duration::from_secs(90),
        || {
            let out = s.kubectl_ok(&[
            "get", "pods", "-l", "app=app", "-o",
            "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.spec.nodeName} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ]);
            let live: Vec<&str> = out
                .lines()
                .filter(|l| l.split_whitespace().count() == 1)
                .collect();
            (live.len() == 6 && live.iter().all(|l| l.starts_with("survivor"))).then_some(())
        },
    );
    let events = s.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "reason=TaintManagerEviction",
    ]);
    assert!(events.contains("Marking for deletion"), "{events}");
}
