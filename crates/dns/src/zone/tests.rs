//! The answers of CoreDNS's kubernetes plugin (its README's examples), from a snapshot.

use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).unwrap()
}

fn zone() -> Zone {
    let services = [
        svc(json!({
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.1", "clusterIPs": ["10.43.0.1"],
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}
        })),
        svc(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"clusterIP": "10.43.5.6",
                     "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}
        })),
        svc(json!({
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
        })),
        svc(json!({
            "metadata": {"name": "search", "namespace": "shop"},
            "spec": {"type": "ExternalName", "externalName": "Search.Example.COM."}
        })),
    ];
    let slices = [
        slice(json!({
            "metadata": {"name": "db-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 15432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.42.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.8"], "conditions": {"ready": true}},
                {"addresses": ["10.42.0.9"], "hostname": "db-2", "conditions": {"ready": false}}
            ]
        })),
        // Slices of ClusterIP services do not change their answers.
        slice(json!({
            "metadata": {"name": "web-abc", "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.0.3"]}]
        })),
    ];
    let services: Vec<&Service> = services.iter().collect();
    let slices: Vec<&EndpointSlice> = slices.iter().collect();
    Zone::build("cluster.local", &services, &slices)
}

fn a(name: &str, ip: &str) -> Rr {
    Rr {
        name: name.into(),
        data: Data::A(ip.parse().unwrap()),
    }
}

fn answers(z: &Zone, name: &str, kind: Kind) -> Vec<Rr> {
    match z.answer(name, kind) {
        Answer::Records { answers, .. } => answers,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn cluster_ip_service_is_its_cluster_ip() {
    let z = zone();
    let name = "kubernetes.default.svc.cluster.local";
    assert_eq!(answers(&z, name, Kind::A), vec![a(name, "10.43.0.1")]);
    // Case and the trailing dot do not matter.
    assert_eq!(
        answers(&z, "Kubernetes.DEFAULT.svc.cluster.local.", Kind::A),
        vec![a(name, "10.43.0.1")]
    );
}

#[test]
fn ipv4_names_have_no_aaaa_but_exist() {
    let z = zone();
    assert_eq!(
        z.answer("web.shop.svc.cluster.local", Kind::Aaaa),
        Answer::Records {
            zone: "cluster.local".into(),
            answers: vec![],
            additionals: vec![]
        }
    );
}

#[test]
fn headless_service_is_its_ready_endpoints() {
    let z = zone();
    let name = "db.shop.svc.cluster.local";
    assert_eq!(
        answers(&z, name, Kind::A),
        vec![a(name, "10.42.0.7"), a(name, "10.42.0.8")]
    );
    // Endpoints by hostname (StatefulSet pods), others by dashed address.
    let host = "db-0.db.shop.svc.cluster.local";
    assert_eq!(answers(&z, host, Kind::A), vec![a(host, "10.42.0.7")]);
    let dashed = "10-42-0-8.db.shop.svc.cluster.local";
    assert_eq!(answers(&z, dashed, Kind::A), vec![a(dashed, "10.42.0.8")]);
    // A not-ready endpoint has no name.
    assert!(matches!(
        z.answer("db-2.db.shop.svc.cluster.local", Kind::A),
        Answer::NxDomain { .. }
    ));
}

#[test]
fn srv_of_named_ports() {
    let z = zone();
    let name = "_http._tcp.web.shop.svc.cluster.local";
    let Answer::Records {
        answers,
        additionals,
        ..
    } = z.answer(name, Kind::Srv)
    else {
        panic!()
    };
    assert_eq!(
        answers,
        vec![Rr {
            name: name.into(),
            data: Data::Srv {
                priority: 0,
                weight: 100,
                port: 80,
                target: "web.shop.svc.cluster.local".into()
            }
        }]
    );
    assert_eq!(
        additionals,
        vec![a("web.shop.svc.cluster.local", "10.43.5.6")]
    );
    assert_eq!(
        answers_len(&z, "_dns._udp.web.shop.svc.cluster.local"),
        1,
        "protocol is matched case-insensitively"
    );
    assert!(matches!(
        z.answer("_dns._tcp.web.shop.svc.cluster.local", Kind::Srv),
        Answer::NxDomain { .. }
    ));
    // Headless: one target per endpoint, with the endpoint's port.
    let Answer::Records {
        answers,
        additionals,
        ..
    } = z.answer("_pg._tcp.db.shop.svc.cluster.local", Kind::Srv)
    else {
        panic!()
    };
    let targets: Vec<(u16, String)> = answers
        .iter()
        .map(|r| match &r.data {
            Data::Srv { port, target, .. } => (*port, target.clone()),
            d => panic!("{d:?}"),
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            (15432, "db-0.db.shop.svc.cluster.local".into()),
            (15432, "10-42-0-8.db.shop.svc.cluster.local".into())
        ]
    );
    assert_eq!(additionals.len(), 2);
    // The `_tcp` level exists (NODATA), an unknown protocol does not.
    assert_eq!(answers_len(&z, "_tcp.db.shop.svc.cluster.local"), 0);
}

fn answers_len(z: &Zone, name: &str) -> usize {
    answers(z, name, Kind::Srv).len()
}

#[test]
fn external_name_is_a_cname_for_every_type() {
    let z = zone();
    let name = "search.shop.svc.cluster.local";
    let cname = vec![Rr {
        name: name.into(),
        data: Data::Cname("search.example.com".into()),
    }];
    assert_eq!(answers(&z, name, Kind::A), cname);
    assert_eq!(answers(&z, name, Kind::Aaaa), cname);
    assert_eq!(answers(&z, name, Kind::Cname), cname);
}

#[test]
fn pod_names_echo_their_address() {
    let z = zone();
    let name = "10-42-1-2.anything.pod.cluster.local";
    assert_eq!(answers(&z, name, Kind::A), vec![a(name, "10.42.1.2")]);
    assert!(matches!(
        z.answer("10-42-1.anything.pod.cluster.local", Kind::A),
        Answer::NxDomain { .. }
    ));
}

#[test]
fn ptr_of_cluster_ips_and_headless_endpoints() {
    let z = zone();
    let ptr = |name: &str| -> Vec<String> {
        answers(&z, name, Kind::Ptr)
            .into_iter()
            .map(|r| match r.data {
                Data::Ptr(n) => n,
                d => panic!("{d:?}"),
            })
            .collect()
    };
    assert_eq!(
        ptr("1.0.43.10.in-addr.arpa"),
        vec!["kubernetes.default.svc.cluster.local"]
    );
    assert_eq!(
        ptr("7.0.42.10.in-addr.arpa."),
        vec!["db-0.db.shop.svc.cluster.local"]
    );
    // Addresses that are not ours, and other reverse zones, go upstream.
    assert_eq!(z.answer("8.8.8.8.in-addr.arpa", Kind::Ptr), Answer::Forward);
    assert_eq!(z.answer("10.in-addr.arpa", Kind::Ptr), Answer::Forward);
}

#[test]
fn unknown_names_in_the_domain_are_nxdomain_others_forwarded() {
    let z = zone();
    for name in [
        "nope.default.svc.cluster.local",
        "kubernetes.default.svc.cluster.local.default.svc.cluster.local",
        "nope.svc.cluster.local",
        "x.cluster.local",
        "_https._udp.kubernetes.default.svc.cluster.local",
    ] {
        assert_eq!(
            z.answer(name, Kind::A),
            Answer::NxDomain {
                zone: "cluster.local".into()
            },
            "{name}"
        );
    }
    // Namespaces with services, and the structural names, exist without records.
    for name in [
        "shop.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ] {
        assert_eq!(answers(&z, name, Kind::A), vec![], "{name}");
    }
    assert_eq!(z.answer("example.com", Kind::A), Answer::Forward);
    assert_eq!(z.answer("notcluster.local", Kind::A), Answer::Forward);
}
