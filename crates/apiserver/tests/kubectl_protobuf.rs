//! kubectl's typed commands send their bodies as Kubernetes protobuf
//! (`application/vnd.kubernetes.protobuf`): create deployment/configmap/secret/
//! serviceaccount/token, auth whoami/can-i, drain's evictions. The real kubectl against
//! an in-process server (memory store) that issues service account tokens.

use std::process::Output;

use serde_json::Value;
use testkit::TestServer;

/// testkit's server (it issues service account tokens) and its address for raw HTTP.
struct Server {
    inner: TestServer,
    addr: std::net::SocketAddr,
}

impl Server {
    fn start() -> Self {
        let inner = TestServer::start();
        let addr = inner
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("server address");
        Self { inner, addr }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.inner.kubectl(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.inner.ok(args)
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

#[test]
fn typed_creates_send_protobuf() {
    let s = Server::start();

    // The body really is protobuf: kubectl logs the request headers at -v=8.
    let out = s.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
        "-v=8",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl sent no protobuf body: {log}"
    );
    let d = s.json(&["get", "deployment", "web", "-o", "json"]);
    assert_eq!(d["spec"]["replicas"], 2, "{d}");
    assert_eq!(d["metadata"]["labels"]["app"], "web", "{d}");
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web", "{d}");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx", "{d}");
    assert_eq!(c["image"], "nginx", "{d}");
    // Go writes unset non-pointer strings as ""; none of them may surface.
    let meta = d["metadata"].as_object().unwrap();
    for (k, v) in meta {
        assert_ne!(v, "", "metadata.{k} is empty: {d}");
    }
    assert!(meta.get("generateName").is_none(), "{d}");
    // Nor Go's non-pointer zeros: the object reads as if it had come as JSON.
    for (obj, key) in [
        (&d["spec"], "paused"),
        (&d["spec"], "minReadySeconds"),
        (&d["spec"]["template"]["metadata"], "generation"),
        (&d["spec"]["template"]["spec"], "hostNetwork"),
        (c, "stdin"),
        (c, "tty"),
    ] {
        assert!(obj.get(key).is_none(), "{key}: {d}");
    }

    // A pointer zero survives.
    s.ok(&[
        "create",
        "deployment",
        "idle",
        "--image=nginx",
        "--replicas=0",
        "--port=8080",
    ]);
    let d = s.json(&["get", "deployment", "idle", "-o", "json"]);
    assert_eq!(d["spec"]["replicas"], 0, "{d}");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 8080,
        "{d}"
    );

    s.ok(&["create", "configmap", "x", "--from-literal=a=b"]);
    let cm = s.json(&["get", "configmap", "x", "-o", "json"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "b"}), "{cm}");

    s.ok(&["create", "secret", "generic", "s", "--from-literal=k=v"]);
    let sec = s.json(&["get", "secret", "s", "-o", "json"]);
    assert_eq!(sec["data"], serde_json::json!({"k": "dg=="}), "{sec}");
    assert_eq!(sec["type"], "Opaque", "{sec}");

    s.ok(&["create", "serviceaccount", "robot"]);
    let token = s.ok(&["create", "token", "robot", "--duration=1h"]);
    assert_eq!(token.trim().split('.').count(), 3, "not a JWT: {token}");

    let who = s.json(&["auth", "whoami", "-o", "json"]);
    assert_eq!(who["kind"], "SelfSubjectReview", "{who}");
    assert_eq!(
        who["status"]["userInfo"]["username"], "system:admin",
        "{who}"
    );
    assert_eq!(s.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
}

/// One HTTP/1.1 request over a fresh connection; the status code and body.
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut out = Vec::new();
    conn.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text[9..12].parse().unwrap();
    (code, text)
}

#[test]
fn evictions_drain_and_protobuf() {
    use k8s_pb::api::policy::v1::Eviction;
    use k8s_pb::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta};
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use prost::Message;

    let s = Server::start();
    let node = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#;
    let pod = |name: &str, node: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
              "spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"nginx"}}]}}}}"#
        )
    };
    for doc in [node.to_string(), pod("p1", "n1"), pod("p2", "")] {
        let path = s.inner.dir.path().join("obj.json");
        std::fs::write(&path, doc).unwrap();
        s.ok(&["create", "-f", path.to_str().unwrap()]);
    }
    // kubectl 1.33's drain posts its evictions as JSON; they work either way.
    s.ok(&[
        "drain",
        "n1",
        "--force",
        "--ignore-daemonsets",
        "--grace-period=0",
        "--timeout=30s",
    ]);
    let node = s.json(&["get", "node", "n1", "-o", "json"]);
    assert_eq!(node["spec"]["unschedulable"], true, "{node}");
    s.ok(&["get", "pod", "p2"]);
    assert!(!s.ok(&["get", "pods", "-o", "name"]).contains("pod/p1"));

    // An eviction as a Go client encodes it in protobuf.
    let eviction = Eviction {
        metadata: Some(ObjectMeta {
            name: Some("p2".into()),
            namespace: Some("default".into()),
            ..Default::default()
        }),
        delete_options: Some(DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        }),
    };
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("policy/v1".into()),
            kind: Some("Eviction".into()),
        }),
        raw: Some(eviction.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    let (code, text) = http(
        s.addr,
        "POST",
        "/api/v1/namespaces/default/pods/p2/eviction",
        "application/vnd.kubernetes.protobuf",
        &body,
    );
    assert_eq!(code, 201, "{text}");
    assert!(!s.ok(&["get", "pods", "-o", "name"]).contains("pod/p2"));

    // Garbage in a protobuf body is a 400, not a crash.
    let (code, text) = http(
        s.addr,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf",
        b"k8s\0\x0a\xff\xff",
    );
    assert_eq!(code, 400, "{text}");
}

#[test]
fn more_typed_creates() {
    let s = Server::start();
    let cmds: &[&[&str]] = &[
        &["create", "namespace", "team"],
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
        &["create", "service", "nodeport", "np", "--tcp=80:8080"],
        &[
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ],
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/5 * * * *",
        ],
        &[
            "create",
            "role",
            "reader",
            "--verb=get,list",
            "--resource=pods",
        ],
        &[
            "create",
            "rolebinding",
            "rb",
            "--role=reader",
            "--user=alice",
        ],
        &[
            "create",
            "clusterrole",
            "cr",
            "--verb=get",
            "--resource=nodes",
        ],
        &[
            "create",
            "clusterrolebinding",
            "crb",
            "--clusterrole=cr",
            "--group=devs",
        ],
        &["create", "quota", "q", "--hard=pods=10,requests.cpu=2"],
        &[
            "create",
            "poddisruptionbudget",
            "pdb",
            "--selector=app=web",
            "--min-available=50%",
        ],
        &["create", "priorityclass", "high", "--value=1000"],
        &[
            "create",
            "ingress",
            "ing",
            "--rule=example.com/=web:http",
            "--rule=x.example.com/api*=np:80",
        ],
        &[
            "run",
            "solo",
            "--image=nginx",
            "--port=80",
            "--labels=app=solo",
        ],
        &["create", "deployment", "web", "--image=nginx"],
        &[
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=3",
            "--cpu-percent=50",
        ],
        &[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--name=web-exposed",
        ],
    ];
    for c in cmds {
        s.ok(c);
    }
    let svc = s.json(&["get", "svc", "np", "-o", "json"]);
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["targetPort"], 8080, "{svc}");
    assert!(port["nodePort"].as_i64().unwrap() >= 30000, "{svc}");
    let job = s.json(&["get", "job", "once", "-o", "json"]);
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"]),
        "{job}"
    );
    let role = s.json(&["get", "role", "reader", "-o", "json"]);
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get", "list"]),
        "{role}"
    );
    let quota = s.json(&["get", "quota", "q", "-o", "json"]);
    assert_eq!(quota["spec"]["hard"]["requests.cpu"], "2", "{quota}");
    let pdb = s.json(&["get", "pdb", "pdb", "-o", "json"]);
    assert_eq!(pdb["spec"]["minAvailable"], "50%", "{pdb}");
    let ing = s.json(&["get", "ingress", "ing", "-o", "json"]);
    let rules = &ing["spec"]["rules"];
    assert_eq!(rules[0]["host"], "example.com", "{ing}");
    let backend = &rules[0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(
        backend["port"],
        serde_json::json!({"name": "http"}),
        "{ing}"
    );
    let backend = &rules[1]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["port"], serde_json::json!({"number": 80}), "{ing}");
    let pod = s.json(&["get", "pod", "solo", "-o", "json"]);
    assert_eq!(
        pod["spec"]["containers"][0]["ports"][0]["containerPort"], 80,
        "{pod}"
    );
    let hpa = s.json(&["get", "hpa", "web", "-o", "json"]);
    assert_eq!(hpa["spec"]["maxReplicas"], 3, "{hpa}");
    let pc = s.json(&["get", "priorityclass", "high", "-o", "json"]);
    assert_eq!(pc["value"], 1000, "{pc}");
}
