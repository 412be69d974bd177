//! What the ruleset of one service port looks like, rule by rule.

use super::*;

fn port(endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        id: "default/web:http:tcp".into(),
        cluster_ips: vec!["10.43.0.9".parse().unwrap()],
        port: 80,
        proto: Proto::Tcp,
        node_port: Some(30080),
        external_ips: vec![],
        affinity_timeout: None,
        external_local: false,
        internal_local: false,
        endpoints,
    }
}

fn ep(ip: &str, ready: bool) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port: 8080,
        ready,
        serving: ready,
        terminating: false,
        local: true,
    }
}

fn cidr() -> Ipv4Net {
    "10.42.0.0/16".parse().unwrap()
}

fn key() -> Key {
    Key::Addr("10.43.0.9".parse().unwrap(), Proto::Tcp, 80)
}

fn hairpins(rs: &Ruleset) -> Vec<String> {
    rs.elements[HAIRPIN].keys().map(Key::to_string).collect()
}

#[test]
fn services_with_endpoints_dnat_from_their_chain_and_without_reject() {
    let rs = Ruleset::build(
        &[port(vec![
            ep("10.42.0.5", true),
            ep("10.42.0.6", true),
            ep("10.42.0.7", false),
        ])],
        cidr(),
    );
    let svc = &rs.elements[SERVICE_IPS][&key()];
    let rules: Vec<String> = rs.chains[svc].iter().map(Rule::to_string).collect();
    assert_eq!(
        rules,
        [
            "ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
            "numgen random mod 2 == 0 meta l4proto tcp dnat to 10.42.0.5:8080",
            "meta l4proto tcp dnat to 10.42.0.6:8080",
        ]
    );
    assert!(rs.elements[SERVICE_NODEPORTS].contains_key(&Key::NodePort(Proto::Tcp, 30080)));
    // The service chain and the NodePort's external one; no chain per endpoint.
    assert_eq!(rs.chains.len(), 2, "{:?}", rs.chains.keys());
    assert_eq!(
        hairpins(&rs),
        ["10.42.0.5 . 10.42.0.5", "10.42.0.6 . 10.42.0.6"],
        "not-ready endpoints are not masqueraded for"
    );

    let empty = Ruleset::build(&[port(vec![ep("10.42.0.7", false)])], cidr());
    assert_eq!(empty.elements[NO_ENDPOINT_SERVICES][&key()], REJECT);
    assert!(empty.elements[SERVICE_IPS].is_empty());
    assert!(empty.chains.is_empty() && hairpins(&empty).is_empty());
}

#[test]
fn endpoints_are_picked_with_falling_odds_for_an_even_spread() {
    // 1/3, then 1/2 of the rest, then the rest: each endpoint gets a third.
    let rs = Ruleset::build(
        &[port(vec![
            ep("10.42.0.5", true),
            ep("10.42.0.6", true),
            ep("10.42.0.7", true),
        ])],
        cidr(),
    );
    let rules = &rs.chains[&rs.elements[SERVICE_IPS][&key()]];
    let picks: Vec<(&Pick, Ipv4Addr)> = rules[1..]
        .iter()
        .map(|r| match r {
            Rule::Dnat { pick, ip, .. } => (pick, *ip),
            other => panic!("{other:?}"),
        })
        .collect();
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert_eq!(
        picks,
        [
            (&Pick::Random(3), ip("10.42.0.5")),
            (&Pick::Random(2), ip("10.42.0.6")),
            (&Pick::Always, ip("10.42.0.7")),
        ]
    );
}

#[test]
fn affinity_sends_returning_clients_back_and_remembers_new_ones() {
    let mut sp = port(vec![ep("10.42.0.5", true), ep("10.42.0.6", true)]);
    sp.affinity_timeout = Some(600);
    let rs = Ruleset::build(&[sp], cidr());
    let rules = &rs.chains[&rs.elements[SERVICE_IPS][&key()]];
    let sets: Vec<&String> = rs.sets.keys().collect();
    assert_eq!(sets.len(), 2);
    assert!(rs.sets.values().all(|t| *t == 600));
    let text: Vec<String> = rules[1..].iter().map(Rule::to_string).collect();
    // Each endpoint's rules check and update its own set.
    let of = |ip: &str| {
        let Some(Rule::Dnat { affinity, .. }) = rules[1..]
            .iter()
            .find(|r| matches!(r, Rule::Dnat { ip: i, .. } if i.to_string() == ip))
        else {
            panic!("no rule for {ip}")
        };
        affinity.clone().unwrap()
    };
    let (a, b) = (of("10.42.0.5"), of("10.42.0.6"));
    assert_ne!(a, b);
    assert_eq!(
        text,
        [
            format!(
                "ip saddr @{a} update @{a} {{ ip saddr }} meta l4proto tcp dnat to 10.42.0.5:8080"
            ),
            format!(
                "ip saddr @{b} update @{b} {{ ip saddr }} meta l4proto tcp dnat to 10.42.0.6:8080"
            ),
            format!(
                "numgen random mod 2 == 0 update @{a} {{ ip saddr }} meta l4proto tcp dnat to 10.42.0.5:8080"
            ),
            format!("update @{b} {{ ip saddr }} meta l4proto tcp dnat to 10.42.0.6:8080"),
        ]
    );
}

#[test]
fn local_policies_pick_local_endpoints_and_only_those_are_hairpinned() {
    // External traffic goes to the local endpoint only, without masquerading;
    // internal traffic to both. A remote-only service with internal Local: rejected.
    let mut remote = ep("10.42.1.6", true);
    remote.local = false;
    let mut sp = port(vec![ep("10.42.0.5", true), remote.clone()]);
    sp.external_local = true;
    let rs = Ruleset::build(&[sp], cidr());
    let ext = &rs.elements[SERVICE_NODEPORTS][&Key::NodePort(Proto::Tcp, 30080)];
    let rules: Vec<String> = rs.chains[ext].iter().map(Rule::to_string).collect();
    assert_eq!(rules, ["meta l4proto tcp dnat to 10.42.0.5:8080"]);
    assert_eq!(rs.chains[&rs.elements[SERVICE_IPS][&key()]].len(), 3);
    assert_eq!(hairpins(&rs).len(), 2);

    let mut sp = port(vec![remote]);
    sp.internal_local = true;
    let rs = Ruleset::build(&[sp], cidr());
    assert_eq!(rs.elements[NO_ENDPOINT_SERVICES][&key()], REJECT);
    let ext = &rs.elements[SERVICE_NODEPORTS][&Key::NodePort(Proto::Tcp, 30080)];
    let rules: Vec<String> = rs.chains[ext].iter().map(Rule::to_string).collect();
    assert_eq!(
        rules,
        [
            "jump mark-for-masquerade",
            "meta l4proto tcp dnat to 10.42.1.6:8080"
        ]
    );
}

#[test]
fn terminating_local_endpoints_are_used_when_no_local_one_is_ready() {
    // Upstream's fallback per policy: the ready remote endpoint for cluster
    // traffic, the serving-terminating local one for Local external traffic.
    let mut remote = ep("10.42.1.6", true);
    remote.local = false;
    let mut terminating = ep("10.42.0.5", false);
    terminating.serving = true;
    terminating.terminating = true;
    let mut sp = port(vec![terminating, remote]);
    sp.external_local = true;
    let rs = Ruleset::build(&[sp], cidr());
    let ext = &rs.elements[SERVICE_NODEPORTS][&Key::NodePort(Proto::Tcp, 30080)];
    let rules: Vec<String> = rs.chains[ext].iter().map(Rule::to_string).collect();
    assert_eq!(rules, ["meta l4proto tcp dnat to 10.42.0.5:8080"]);
    assert_eq!(
        hairpins(&rs),
        ["10.42.0.5 . 10.42.0.5", "10.42.1.6 . 10.42.1.6"]
    );
}
