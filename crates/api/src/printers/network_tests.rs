//! Cases after upstream's TestPrintService, TestPrintEndpoint, TestPrintEndpointSlice,
//! TestPrintIngress and TestPrintIngressClass.

use serde_json::json;

use super::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

#[test]
fn service_cells() {
    // (spec, status, (type, cluster-ip, external-ip, ports, selector))
    let cases = [
        (
            json!({"type": "ClusterIP", "clusterIPs": ["10.43.0.10"], "clusterIP": "10.43.0.10",
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                "selector": {"k8s-app": "kube-dns"}}),
            json!({}),
            (
                "ClusterIP",
                "10.43.0.10",
                "<none>",
                "53/UDP,53/TCP",
                "k8s-app=kube-dns",
            ),
        ),
        (
            json!({"type": "NodePort", "clusterIPs": ["10.43.0.2"], "externalIPs": ["1.2.3.4"],
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
            json!({}),
            ("NodePort", "10.43.0.2", "1.2.3.4", "80:30080/TCP", "<none>"),
        ),
        (
            json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.3"], "ports": [{"port": 443}]}),
            json!({}),
            (
                "LoadBalancer",
                "10.43.0.3",
                "<pending>",
                "443/TCP",
                "<none>",
            ),
        ),
        (
            json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.3"], "externalIPs": ["9.9.9.9"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}, {"ip": "1.1.1.1"}]}}),
            (
                "LoadBalancer",
                "10.43.0.3",
                "1.1.1.1,5.6.7.8,lb.example.com,9.9.9.9",
                "<none>",
                "<none>",
            ),
        ),
        (
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
            (
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                "<none>",
            ),
        ),
        (
            json!({"type": "ClusterIP", "clusterIPs": ["None"]}),
            json!({}),
            ("ClusterIP", "None", "<none>", "<none>", "<none>"),
        ),
    ];
    for (spec, status, (ty, cip, eip, ports, sel)) in cases {
        let svc = json!({"metadata": {"name": "s"}, "spec": spec, "status": status});
        let row = service(&svc, now());
        assert_eq!(
            row,
            [
                json!("s"),
                json!(ty),
                json!(cip),
                json!(eip),
                json!(ports),
                json!("<unknown>"),
                json!(sel)
            ],
            "{svc}"
        );
    }
}

#[test]
fn endpoints_cells() {
    let ep = |subsets: serde_json::Value| endpoints(&json!({"subsets": subsets}), now())[1].clone();
    assert_eq!(ep(json!(null)), json!("<none>"));
    assert_eq!(
        ep(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}])
        ),
        json!("10.0.0.1:80,10.0.0.2:80")
    );
    assert_eq!(
        ep(
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}])
        ),
        json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...")
    );
    assert_eq!(
        ep(
            json!([{"addresses": [{"ip": "fd00::1"}]}, {"addresses": [{"ip": "fd00::2"}], "ports": [{"port": 53}]}])
        ),
        json!("fd00::1,[fd00::2]:53")
    );
}

#[test]
fn endpoint_slice_cells() {
    let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "https"}, {}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
    assert_eq!(
        &endpoint_slice(&slice, now())[1..4],
        &[
            json!("IPv4"),
            json!("80,https,*"),
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
        ]
    );
    let empty = endpoint_slice(&json!({"addressType": "IPv4"}), now());
    assert_eq!(&empty[2..4], &[json!("<unset>"), json!("<unset>")]);
}

#[test]
fn ingress_cells() {
    let ing = json!({"metadata": {"name": "i"},
        "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["a.example"]}],
                 "rules": [{"host": "a.example"}, {"host": "b.example"}, {}, {"host": "c.example"}, {"host": "d.example"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}});
    assert_eq!(
        &ingress(&ing, now())[1..5],
        &[
            json!("traefik"),
            json!("a.example,b.example,c.example + 2 more..."),
            json!("10.0.0.9"),
            json!("80, 443")
        ]
    );
    let bare = ingress(&json!({"spec": {"rules": [{}]}}), now());
    assert_eq!(
        &bare[1..5],
        &[json!("<none>"), json!("*"), json!(""), json!("80")]
    );
}

#[test]
fn ingress_class_and_network_policy_cells() {
    let ic = json!({"spec": {"controller": "example.com/ingress",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    assert_eq!(
        &ingress_class(&ic, now())[1..3],
        &[
            json!("example.com/ingress"),
            json!("IngressParameters.k8s.example.com/external-lb")
        ]
    );
    assert_eq!(ingress_class(&json!({}), now())[2], json!("<none>"));
    let np = json!({"spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    assert_eq!(network_policy(&np, now())[1], json!("role=db"));
    assert_eq!(network_policy(&json!({}), now())[1], json!("<none>"));
}
