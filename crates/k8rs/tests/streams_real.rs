//! kubectl logs, exec, attach, port-forward and cp against real containers: the API server
//! proxies to the kubelet API, which proxies to containerd's streaming server. Needs
//! root and scripts/deps.sh's packages; fails (never skips) without them. Its own
//! pod/service networks and bridge let it run beside the other real-container tests.

// Shared with other tests; not every helper is used here.
#[allow(dead_code)]
#[path = "support/real_node.rs"]
mod real_node;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::Duration;

use real_node::{NodeOpts, RealNode};
use support::wait_for;

const OPTS: NodeOpts = NodeOpts {
    cluster_cidr: "10.196.0.0/16",
    service_cidr: "10.197.0.0/16",
    cluster_dns: "10.197.0.10",
    bridge: "k8rs-st0",
    node_name: "k8rs-streams-test",
};

const WEB: &str = "echo hello-from-log; echo line2; mkdir -p /www; echo pf-ok > /www/index.html; \
                   exec httpd -f -p 8080 -h /www";

fn text(out: std::process::Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Both tests' nodes run a service proxy with the same nftables table.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[test]
fn logs_exec_port_forward_and_cp_reach_real_containers() {
    let _serial = SERIAL.blocking_lock();
    let node = RealNode::start(OPTS);
    let s = node.server();
    s.kubectl_ok(&["run", "web", "--image=busybox", "--", "sh", "-c", WEB]);
    node.wait_pod("web", "{.status.phase}", "Running", Duration::from_secs(60));

    // logs, with --tail and --timestamps
    wait_for("both log lines", Duration::from_secs(10), || {
        (s.kubectl_ok(&["logs", "web"]) == "hello-from-log\nline2\n").then_some(())
    });
    assert_eq!(s.kubectl_ok(&["logs", "web", "--tail=1"]), "line2\n");
    let stamped = s.kubectl_ok(&["logs", "web", "--timestamps"]);
    for line in stamped.lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        assert!(
            ts.starts_with("20") && ts.contains('T') && ts.ends_with('Z'),
            "{line:?}"
        );
        assert!(["hello-from-log", "line2"].contains(&rest), "{line:?}");
    }
    let e = s.kubectl_err(&["logs", "web", "-c", "nope"]);
    assert!(e.contains("container nope is not valid for pod web"), "{e}");

    // exec: output, exit codes, stdin
    let ls = s.kubectl_ok(&["exec", "web", "--", "ls", "/"]);
    assert!(
        ls.lines().any(|l| l == "www") && ls.lines().any(|l| l == "bin"),
        "{ls}"
    );
    let out = s.kubectl(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{:?}", text(out.clone()));
    let (_, stdout, stderr) = text(out);
    assert_eq!(stdout, "out\n");
    assert!(stderr.contains("err\n"), "{stderr}");
    assert!(
        stderr.contains("command terminated with exit code 3"),
        "{stderr}"
    );
    let out = s.kubectl_stdin(
        &["exec", "-i", "web", "--", "sh"],
        "echo in-$((6*7))\nexit\n",
    );
    assert_eq!(text(out).1, "in-42\n");
    // stdin's end reaches the command (v5's close signal becomes a SPDY FIN).
    let out = s.kubectl_stdin(&["exec", "-i", "web", "--", "cat"], "piped through cat\n");
    assert_eq!(text(out).1, "piped through cat\n");

    // kubectl 1.27 speaks SPDY for exec: passed through to the runtime untranslated.
    let old = support::versioned_kubectl(27).expect("kubectl.1.27 is installed beside kubectl");
    let out = std::process::Command::new(old)
        .args(["exec", "-i", "web", "--", "cat"])
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"over spdy\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(text(out).1, "over spdy\n");

    // port-forward to the pod's httpd
    let local = free_port();
    let mut pf = s
        .kubectl_cmd(&["port-forward", "pod/web", &format!("{local}:8080")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(pf.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.starts_with("Forwarding from"), "{first:?}");
    for _ in 0..2 {
        assert_eq!(http_get(local), "pf-ok\n");
    }
    let _ = pf.kill();
    let _ = pf.wait();

    // exec -it on a real terminal (util-linux `script` gives kubectl a pty).
    let kubectl = support::kubectl_path();
    let mut tty = std::process::Command::new("script")
        .args([
            "-qfec",
            &format!("{} exec -it web -- sh", kubectl.display()),
            "/dev/null",
        ])
        .env("KUBECONFIG", &s.kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (bsdutils)");
    let mut stdin = tty.stdin.take().unwrap();
    let (chunks, received) = std::sync::mpsc::channel::<String>();
    let reader = {
        let mut out = tty.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                let _ = chunks.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        })
    };
    stdin.write_all(b"echo tty-$((6*7)); tty\r").unwrap();
    stdin.flush().unwrap();
    let mut seen = String::new();
    wait_for(
        "the shell's answer on the terminal",
        Duration::from_secs(30),
        || {
            seen.extend(received.try_iter());
            (seen.contains("tty-42") && seen.contains("/dev/pts/")).then_some(())
        },
    );
    stdin.write_all(b"exit\r").unwrap();
    drop(stdin);
    let status = tty.wait().unwrap();
    reader.join().unwrap();
    seen.extend(received.try_iter());
    assert!(status.success(), "{seen}");

    // cp out of the container (tar over exec)
    let dir = tempfile::tempdir().unwrap();
    let copied = dir.path().join("index.html");
    s.kubectl_ok(&["cp", "web:/www/index.html", copied.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "pf-ok\n");
    // cp into the container, a file bigger than SPDY's default window.
    let big = dir.path().join("big.txt");
    let line = "0123456789abcdef".repeat(4) + "\n";
    std::fs::write(&big, line.repeat(10_000)).unwrap();
    s.kubectl_ok(&["cp", big.to_str().unwrap(), "web:/tmp/big.txt"]);
    let size = s.kubectl_ok(&["exec", "web", "--", "sh", "-c", "wc -c < /tmp/big.txt"]);
    assert_eq!(size.trim(), (line.len() * 10_000).to_string());
    let back = dir.path().join("back.txt");
    s.kubectl_ok(&["cp", "web:/tmp/big.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&big).unwrap());
}

#[test]
fn follow_ends_with_the_container_and_previous_shows_the_last_run() {
    let _serial = SERIAL.blocking_lock();
    let mut opts = OPTS;
    opts.bridge = "k8rs-st1";
    opts.node_name = "k8rs-streams-test2";
    opts.cluster_cidr = "10.198.0.0/16";
    let node = RealNode::start(opts);
    let s = node.server();
    let ticker = "sleep 1; for i in 1 2 3; do echo tick-$i; sleep 0.3; done";
    s.kubectl_ok(&[
        "run",
        "ticker",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        ticker,
    ]);
    node.wait_pod(
        "ticker",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    );
    // -f returns by itself once the container exits, with every line.
    let followed = s.kubectl_ok(&["logs", "-f", "ticker"]);
    assert_eq!(followed, "tick-1\ntick-2\ntick-3\n");

    s.kubectl_ok(&[
        "run",
        "crash",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "echo run-once; exit 1",
    ]);
    node.wait_pod_until("crash", "restarted once", Duration::from_secs(60), || {
        let n = node.jsonpath(
            &["get", "pod", "crash"],
            "{.status.containerStatuses[0].restartCount}",
        );
        (n.parse::<u32>().unwrap_or(0) >= 1).then_some(())
    });
    assert_eq!(s.kubectl_ok(&["logs", "crash", "--previous"]), "run-once\n");

    // attach -i: what is typed reaches the running container's stdin and its answers
    // come back; with stdinOnce, closing stdin ends the container and the session.
    let echoer = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "echoer"},
      "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "busybox",
        "stdin": true, "stdinOnce": true,
        "command": ["sh", "-c", "while read l; do echo got-$l; done"]}]}}"#;
    s.apply(echoer);
    node.wait_pod(
        "echoer",
        "{.status.phase}",
        "Running",
        Duration::from_secs(60),
    );
    let mut attach = s
        .kubectl_cmd(&["attach", "-i", "echoer"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    attach.stdin.take().unwrap().write_all(b"a\nb\n").unwrap();
    wait_for("attach to end", Duration::from_secs(30), || {
        attach.try_wait().unwrap().map(|_| ())
    });
    let out = attach.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("got-a\ngot-b\n"),
        "stdout {stdout:?}, stderr {stderr:?}"
    );
    node.wait_pod(
        "echoer",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(30),
    );

    s.kubectl_ok(&["run", "pend", "--image=k8rs.invalid/none:v1"]);
    let e = wait_for(
        "a waiting container's logs refused",
        Duration::from_secs(30),
        || {
            let (ok, _, e) = text(s.kubectl(&["logs", "pend"]));
            (!ok && e.contains("ImagePull")).then_some(e)
        },
    );
    assert!(
        e.contains("container \"pend\" in pod \"pend\" is waiting to start: "),
        "{e}"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn http_get(port: u16) -> String {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(resp)
}
