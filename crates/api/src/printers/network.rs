//! Services, endpoints, endpoint slices, ingresses, ingress classes, network policies.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::cells::{age, arr, int, list_with_more, name, s};
use super::{AGE, Col, NAME, col, wide};
use crate::selectors::{format_label_selector, format_labels};

pub(super) const SERVICE: &[Col] = &[
    NAME,
    col(
        "Type",
        "string",
        "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
    ),
    col(
        "Cluster-IP",
        "string",
        "The service's virtual IP inside the cluster.",
    ),
    col(
        "External-IP",
        "string",
        "Addresses the service is reachable at from outside the cluster.",
    ),
    col(
        "Port(s)",
        "string",
        "The service's ports, with node ports where allocated.",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "The labels of the pods behind the service.",
    ),
];

/// Load balancer ingress points: IPs, or hostnames where there is no IP; sorted,
/// without repeats. (The server prints wide, so upstream does not shorten them.)
fn load_balancer(status: &Value) -> String {
    let set: BTreeSet<&str> = arr(&status["loadBalancer"]["ingress"])
        .iter()
        .filter_map(|i| match (s(&i["ip"]), s(&i["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let external: Vec<&str> = arr(&spec["externalIPs"]).iter().map(s).collect();
    match s(&spec["type"]) {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let lb = load_balancer(&svc["status"]);
            let mut all: Vec<&str> = lb.split(',').filter(|x| !x.is_empty()).collect();
            all.extend(external);
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(&spec["externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// `80/TCP`, or `80:30080/TCP` with a node port, comma-separated.
fn ports(spec: &Value) -> String {
    let list: Vec<String> = arr(&spec["ports"])
        .iter()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match int(&p["nodePort"]) {
                n if n > 0 => format!("{}:{n}/{protocol}", int(&p["port"])),
                _ => format!("{}/{protocol}", int(&p["port"])),
            }
        })
        .collect();
    if list.is_empty() {
        "<none>".to_string()
    } else {
        list.join(",")
    }
}

pub(super) fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &svc["spec"];
    let cluster_ip = spec["clusterIPs"][0]
        .as_str()
        .or_else(|| spec["clusterIP"].as_str())
        .filter(|ip| !ip.is_empty())
        .unwrap_or("<none>");
    vec![
        name(svc),
        s(&spec["type"]).into(),
        cluster_ip.into(),
        external_ip(svc).into(),
        ports(spec).into(),
        age(svc, now),
        format_labels(spec["selector"].as_object()).into(),
    ]
}

pub(super) const ENDPOINTS: &[Col] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "Addresses and ports of the endpoints, the first three of them.",
    ),
    AGE,
];

/// Upstream's `formatEndpoints`: `ip:port` for each address and port, three at most.
pub(super) fn endpoints(obj: &Value, now: Timestamp) -> Vec<Value> {
    let subsets = arr(&obj["subsets"]);
    let cell = if subsets.is_empty() {
        "<none>".to_string()
    } else {
        let mut list = Vec::new();
        let mut total = 0;
        for ss in subsets {
            let addresses = arr(&ss["addresses"]);
            let ports = arr(&ss["ports"]);
            if ports.is_empty() {
                // Headless services may have no ports.
                total += addresses.len();
                list.extend(addresses.iter().map(|a| s(&a["ip"]).to_string()));
                continue;
            }
            for port in ports {
                total += addresses.len();
                for a in addresses {
                    let ip = s(&a["ip"]);
                    let port = int(&port["port"]);
                    // Go's net.JoinHostPort brackets IPv6 addresses.
                    list.push(if ip.contains(':') {
                        format!("[{ip}]:{port}")
                    } else {
                        format!("{ip}:{port}")
                    });
                }
            }
        }
        let shown = list[..list.len().min(3)].join(",");
        if list.len() > 3 {
            format!("{shown} + {} more...", total - 3)
        } else {
            shown
        }
    };
    vec![name(obj), cell.into(), age(obj, now)]
}

pub(super) const ENDPOINT_SLICE: &[Col] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "The kind of addresses in the slice: IPv4, IPv6 or FQDN.",
    ),
    col(
        "Ports",
        "string",
        "The slice's port numbers, the first three of them.",
    ),
    col(
        "Endpoints",
        "string",
        "The slice's addresses, the first three of them.",
    ),
    AGE,
];

pub(super) fn endpoint_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    let ports: Vec<String> = arr(&obj["ports"])
        .iter()
        .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let addresses: Vec<String> = arr(&obj["endpoints"])
        .iter()
        .flat_map(|e| arr(&e["addresses"]).iter().map(|a| s(a).to_string()))
        .collect();
    vec![
        name(obj),
        s(&obj["addressType"]).into(),
        list_with_more(&ports, 3).into(),
        list_with_more(&addresses, 3).into(),
        age(obj, now),
    ]
}

pub(super) const INGRESS: &[Col] = &[
    NAME,
    col(
        "Class",
        "string",
        "The IngressClass that handles this ingress.",
    ),
    col(
        "Hosts",
        "string",
        "The host names the rules match, the first three of them.",
    ),
    col(
        "Address",
        "string",
        "Where the load balancer serving the ingress can be reached.",
    ),
    col(
        "Ports",
        "string",
        "The ports the ingress serves: 80, and 443 with TLS.",
    ),
    AGE,
];

/// Upstream's `formatHosts`: up to three hosts, `*` when no rule names one.
fn hosts(rules: &[Value]) -> String {
    let mut list = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == 3 {
            more = true;
        }
        let host = s(&rule["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let shown = list.join(",");
    if more {
        format!("{shown} + {} more...", rules.len() - 3)
    } else {
        shown
    }
}

pub(super) fn ingress(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let ports = if arr(&spec["tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        spec["ingressClassName"].as_str().unwrap_or("<none>").into(),
        hosts(arr(&spec["rules"])).into(),
        load_balancer(&obj["status"]).into(),
        ports.into(),
        age(obj, now),
    ]
}

pub(super) const INGRESS_CLASS: &[Col] = &[
    NAME,
    col(
        "Controller",
        "string",
        "The controller that implements this class.",
    ),
    col(
        "Parameters",
        "string",
        "The resource holding the class's extra configuration.",
    ),
    AGE,
];

pub(super) fn ingress_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let p = &spec["parameters"];
    let parameters = if p.is_object() {
        let kind = match p["apiGroup"].as_str() {
            Some(g) => format!("{}.{g}", s(&p["kind"])),
            None => s(&p["kind"]).to_string(),
        };
        format!("{kind}/{}", s(&p["name"]))
    } else {
        "<none>".to_string()
    };
    vec![
        name(obj),
        s(&spec["controller"]).into(),
        parameters.into(),
        age(obj, now),
    ]
}

pub(super) const NETWORK_POLICY: &[Col] = &[
    NAME,
    col("Pod-Selector", "string", "The pods the policy applies to."),
    AGE,
];

pub(super) fn network_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    // The pod selector is a struct, never null: absent means "all pods".
    let selector = match &obj["spec"]["podSelector"] {
        Value::Null => json!({}),
        sel => sel.clone(),
    };
    vec![
        name(obj),
        format_label_selector(&selector).into(),
        age(obj, now),
    ]
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
