//! The DNS server against a real API server: names follow Services and
//! EndpointSlices as they change, other names go to a (fake) upstream.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn query_bytes(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

async fn ask(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&query_bytes(name, t), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("a reply within 5 s")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn ask_tcp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    let q = query_bytes(name, t);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend(q);
    s.write_all(&out).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// An upstream that answers every A question with 192.0.2.1.
async fn fake_upstream() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = sock.recv_from(&mut buf).await.unwrap();
            let req = Message::from_vec(&buf[..n]).unwrap();
            let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
            resp.metadata.message_type = MessageType::Response;
            resp.add_queries(req.queries.clone());
            let q = &req.queries[0];
            if q.query_type == RecordType::A {
                resp.add_answer(Record::from_rdata(
                    q.name.clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                ));
            }
            sock.send_to(&resp.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    addr
}

async fn start() -> (TestServer, kube::Client, dns::Dns) {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let dns = dns::start(
        client.clone(),
        dns::Options {
            domain: "cluster.local".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            upstreams: dns::UpstreamSource::Fixed(vec![fake_upstream().await]),
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        },
    )
    .await
    .unwrap();
    (s, client, dns)
}

async fn stop(s: TestServer) {
    tokio::task::spawn_blocking(move || drop(s)).await.unwrap();
}

/// Asks until `check` holds; returns how long it took.
async fn until(
    server: SocketAddr,
    name: &str,
    t: RecordType,
    check: impl Fn(&Message) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let m = ask(server, name, t).await;
        if check(&m) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name}: still {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_follow_services_and_endpoints() {
    let (s, client, dns) = start().await;
    let addr = dns.addr;
    // The bootstrap `kubernetes` service, once the caches have synced.
    until(
        addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
        |m| addresses(m) == vec![Ipv4Addr::new(10, 43, 0, 1)],
    )
    .await;
    let m = ask_tcp(addr, "kubernetes.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&m), vec![Ipv4Addr::new(10, 43, 0, 1)], "over TCP");
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers[0].ttl, 5);
    // IPv4 only: AAAA is NOERROR without answers.
    let m = ask(
        addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::AAAA,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // PTR of the ClusterIP.
    let m = ask(addr, "1.0.43.10.in-addr.arpa.", RecordType::PTR).await;
    assert!(
        matches!(&m.answers[..], [r] if matches!(&r.data, RData::PTR(p) if p.0.to_ascii() == "kubernetes.default.svc.cluster.local."))
    );
    // Unknown names: NXDOMAIN with the SOA.
    let m = ask(addr, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    // Others go upstream.
    let m = ask(addr, "example.com.", RecordType::A).await;
    assert_eq!(addresses(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);

    // A new Service: answered within a second.
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let created = Instant::now();
    let web = services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "web"},
                "spec": {"ports": [{"name": "http", "port": 80}]}})),
        )
        .await
        .unwrap();
    let ip: Ipv4Addr = web.spec.unwrap().cluster_ip.unwrap().parse().unwrap();
    until(addr, "web.default.svc.cluster.local.", RecordType::A, |m| {
        addresses(m) == vec![ip]
    })
    .await;
    let took_create = created.elapsed();
    let m = ask(
        addr,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert!(
        matches!(&m.answers[..], [r] if matches!(&r.data, RData::SRV(s) if s.port == 80)),
        "{m:?}"
    );
    assert!(addresses(&m).is_empty(), "SRV answers only SRV");
    assert!(
        m.additionals
            .iter()
            .any(|r| matches!(&r.data, RData::A(a) if a.0 == ip))
    );

    // An ExternalName service: a CNAME, its target resolved upstream; then changed.
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "search"},
                "spec": {"type": "ExternalName", "externalName": "search.example.com"}})),
        )
        .await
        .unwrap();
    let cname_is = |want: &'static str| {
        move |m: &Message| {
            m.answers
                .iter()
                .any(|r| matches!(&r.data, RData::CNAME(c) if c.0.to_ascii() == want))
        }
    };
    until(
        addr,
        "search.default.svc.cluster.local.",
        RecordType::A,
        cname_is("search.example.com."),
    )
    .await;
    let m = ask(addr, "search.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    let patched = Instant::now();
    services
        .patch(
            "search",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"externalName": "other.example.org"}})),
        )
        .await
        .unwrap();
    until(
        addr,
        "search.default.svc.cluster.local.",
        RecordType::CNAME,
        cname_is("other.example.org."),
    )
    .await;
    let took_update = patched.elapsed();
    // An ExternalName naming a cluster service is resolved from the zone.
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "alias"},
                "spec": {"type": "ExternalName",
                         "externalName": "kubernetes.default.svc.cluster.local"}})),
        )
        .await
        .unwrap();
    until(
        addr,
        "alias.default.svc.cluster.local.",
        RecordType::A,
        |m| {
            cname_is("kubernetes.default.svc.cluster.local.")(m)
                && addresses(m) == vec![Ipv4Addr::new(10, 43, 0, 1)]
        },
    )
    .await;

    // A headless service with a StatefulSet-style endpoint.
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
        )
        .await
        .unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    slices
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "db-x",
                "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.8"], "conditions": {"ready": false}}
            ]})),
        )
        .await
        .unwrap();
    until(addr, "db.default.svc.cluster.local.", RecordType::A, |m| {
        addresses(m) == vec![Ipv4Addr::new(10, 42, 0, 7)]
    })
    .await;
    let m = ask(addr, "db-0.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&m), vec![Ipv4Addr::new(10, 42, 0, 7)]);
    let m = ask(
        addr,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert!(
        matches!(&m.answers[..], [r] if matches!(&r.data, RData::SRV(s) if s.target.to_ascii() == "db-0.db.default.svc.cluster.local.")),
        "{m:?}"
    );
    let m = ask(addr, "7.0.42.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(m.answers.len(), 1);
    // Pods, without looking them up.
    let m = ask(addr, "10-42-3-4.default.pod.cluster.local.", RecordType::A).await;
    assert_eq!(addresses(&m), vec![Ipv4Addr::new(10, 42, 3, 4)]);

    // A deleted service: NXDOMAIN.
    let deleted = Instant::now();
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    until(addr, "web.default.svc.cluster.local.", RecordType::A, |m| {
        m.metadata.response_code == ResponseCode::NXDomain
    })
    .await;
    let took_delete = deleted.elapsed();
    eprintln!(
        "service change to answer: create {took_create:?}, update {took_update:?}, delete {took_delete:?}"
    );
    for t in [took_create, took_update, took_delete] {
        assert!(t < Duration::from_secs(1), "{t:?}");
    }
    drop(dns);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_dns_service_and_slice() {
    let s = tokio::task::spawn_blocking(TestServer::start)
        .await
        .unwrap();
    let client = s.client();
    let target = dns::kube_dns::Target {
        cluster_ip: "10.43.0.10".parse().unwrap(),
        node_name: "node-a".into(),
        node_ip: "192.0.2.7".parse().unwrap(),
        port: 10053,
        metrics_port: Some(10055),
    };
    dns::kube_dns::ensure(&client, &target).await.unwrap();
    // Twice is the same as once.
    dns::kube_dns::ensure(&client, &target).await.unwrap();
    let svc = Api::<Service>::namespaced(client.clone(), "kube-system")
        .get("kube-dns")
        .await
        .unwrap();
    let labels = svc.metadata.labels.clone().unwrap();
    assert_eq!(labels["k8s-app"], "kube-dns");
    assert_eq!(labels["kubernetes.io/name"], "CoreDNS");
    let spec = svc.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.43.0.10"));
    assert!(
        spec.selector.is_none(),
        "no selector: the endpoints controllers keep off"
    );
    let ports: Vec<_> = spec
        .ports
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port, p.protocol.unwrap()))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("dns".into(), 53, "UDP".into()),
            ("dns-tcp".into(), 53, "TCP".into()),
            ("metrics".into(), 9153, "TCP".into())
        ]
    );
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "kube-system");
    let slice = slices.get("kube-dns-node-a").await.unwrap();
    assert_eq!(slice.endpoints[0].addresses, vec!["192.0.2.7".to_string()]);
    let slice_ports: Vec<_> = slice
        .ports
        .clone()
        .unwrap()
        .into_iter()
        .map(|p| (p.name.unwrap(), p.port.unwrap()))
        .collect();
    assert_eq!(
        slice_ports,
        vec![
            ("dns".into(), 10053),
            ("dns-tcp".into(), 10053),
            ("metrics".into(), 10055)
        ]
    );
    // A new port (a restart with port 0) is written back.
    let moved = dns::kube_dns::Target {
        port: 10054,
        ..target
    };
    dns::kube_dns::ensure(&client, &moved).await.unwrap();
    let slice = slices.get("kube-dns-node-a").await.unwrap();
    let ports = slice.ports.unwrap();
    assert!(
        ports
            .iter()
            .filter(|p| p.name.as_deref() != Some("metrics"))
            .all(|p| p.port == Some(10054)),
        "{ports:?}"
    );
    // kubectl cluster-info finds it by its labels.
    let out = s.ok(&["cluster-info"]);
    assert!(out.contains("CoreDNS is running at"), "{out}");
    stop(s).await;
}

/// `GET /metrics` over plain HTTP/1.0.
async fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_as_coredns_does() {
    let (s, _client, dns) = start().await;
    let metrics = dns.metrics_addr.expect("metrics served");
    // Until the zone is there, cluster names are SERVFAIL; wait for an answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = ask(
            dns.addr,
            "kubernetes.default.svc.cluster.local.",
            RecordType::A,
        )
        .await;
        if m.metadata.response_code == ResponseCode::NoError {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer for kubernetes.default"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ask(
        dns.addr,
        "missing.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    ask(dns.addr, "example.com.", RecordType::A).await;
    ask_tcp(
        dns.addr,
        "kubernetes.default.svc.cluster.local.",
        RecordType::AAAA,
    )
    .await;
    let text = scrape(metrics).await;
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    let server = format!("dns://:{}", dns.addr.port());
    let requests = |proto: &str, t: &str| {
        format!(
            r#"coredns_dns_requests_total{{server="{server}",zone=".",view="",proto="{proto}",family="1",type="{t}"}}"#
        )
    };
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value(&requests("udp", "A")) >= 3.0);
    assert_eq!(value(&requests("tcp", "AAAA")), 1.0);
    let responses = |rcode: &str, plugin: &str| {
        format!(
            r#"coredns_dns_responses_total{{server="{server}",zone=".",view="",rcode="{rcode}",plugin="{plugin}"}}"#
        )
    };
    assert_eq!(value(&responses("NXDOMAIN", "kubernetes")), 1.0);
    assert_eq!(value(&responses("NOERROR", "forward")), 1.0);
    assert!(value(&responses("NOERROR", "kubernetes")) >= 2.0);
    assert!(text.contains("coredns_dns_request_duration_seconds_bucket{"));
    drop(dns);
    stop(s).await;
}
