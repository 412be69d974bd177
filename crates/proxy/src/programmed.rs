//! What the proxy has programmed, kept per service, so a change to a few services is
//! computed and diffed from those services alone: rebuilding and comparing the whole
//! ruleset costs tens of milliseconds at 10,000 services, on every sync.
//!
//! A service's chains and sets are its own (their names hash its ports' identities).
//! Map elements are not always: two services may claim one key (the same external IP
//! and port). The element then goes to the claim of the first service by namespace
//! and name, and to the next one when that claim goes; it lives in the claiming
//! service's shard (`tables.rs`), so a key is in one shard's map at a time.

use std::collections::{BTreeMap, HashMap};

use crate::rules::{Key, Ruleset};
use crate::tables::Tables;

/// A service by namespace and name.
pub type ServiceKey = (String, String);

pub struct Programmed {
    tables: Tables,
    /// Each service's part of the ruleset, its element claims included.
    services: HashMap<ServiceKey, Ruleset>,
    /// (map, key) → claiming service → the chain it wants.
    claims: BTreeMap<(&'static str, Key), Claims>,
}

/// The services claiming one element, by namespace and name, with the chain each
/// wants. Nearly always one: a sorted `Vec` holds it in 72 bytes where a `BTreeMap`
/// node takes ~800 (30,000 elements at 10,000 services, hairpin pairs included).
#[derive(Clone, Debug, Default)]
struct Claims(Vec<(ServiceKey, String)>);

impl Claims {
    /// The claim that wins: the first service by namespace and name.
    fn first(&self) -> Option<(&ServiceKey, &String)> {
        self.0.first().map(|(k, c)| (k, c))
    }

    fn remove(&mut self, svc: &ServiceKey) {
        self.0.retain(|(k, _)| k != svc);
    }

    fn insert(&mut self, svc: ServiceKey, chain: String) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&svc)) {
            Ok(i) => self.0[i].1 = chain,
            Err(i) => self.0.insert(i, (svc, chain)),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The part of each table a change touches, before and after it, by table index
/// (`Tables`: the main table first, then the shards).
pub struct Change {
    pub from: Vec<Ruleset>,
    pub to: Vec<Ruleset>,
}

impl Programmed {
    /// Nothing programmed yet in `tables`.
    pub fn new(tables: Tables) -> Self {
        Self {
            tables,
            services: HashMap::new(),
            claims: BTreeMap::new(),
        }
    }

    /// The change that programs `wanted` (a service's new part, or `None` once it is
    /// gone) for the services in it; other services stay as they are.
    pub fn change(&self, wanted: &HashMap<ServiceKey, Option<Ruleset>>) -> Change {
        let n = self.tables.names().len();
        let (mut from, mut to) = (vec![Ruleset::default(); n], vec![Ruleset::default(); n]);
        // Each element key touched, with its claims now and the services changing them.
        type Touched<'a> = (Claims, Vec<&'a ServiceKey>);
        let mut touched: BTreeMap<(&'static str, Key), Touched<'_>> = BTreeMap::new();
        for (svc, new) in wanted {
            let shard = self.tables.shard_of(svc);
            let parts = [
                (self.services.get(svc), &mut from[shard]),
                (new.as_ref(), &mut to[shard]),
            ];
            for (part, into) in parts {
                let Some(part) = part else { continue };
                into.chains
                    .extend(part.chains.iter().map(|(k, v)| (k.clone(), v.clone())));
                into.sets
                    .extend(part.sets.iter().map(|(k, v)| (k.clone(), *v)));
                for (map, elements) in &part.elements {
                    for key in elements.keys() {
                        let id = (*map, key.clone());
                        let (_, by) = touched.entry(id).or_insert_with_key(|id| {
                            (self.claims.get(id).cloned().unwrap_or_default(), Vec::new())
                        });
                        if by.last() != Some(&svc) {
                            by.push(svc);
                        }
                    }
                }
            }
        }
        for ((map, key), (claims, by)) in &mut touched {
            if let Some((owner, chain)) = claims.first() {
                from[self.tables.element_table(map, owner)].element(map, key.clone(), chain);
            }
            for svc in by.iter() {
                claims.remove(svc);
                let new = wanted.get(*svc).and_then(Option::as_ref);
                if let Some(chain) = new.and_then(|p| p.elements.get(map)?.get(key)) {
                    claims.insert((*svc).clone(), chain.clone());
                }
            }
            if let Some((owner, chain)) = claims.first() {
                to[self.tables.element_table(map, owner)].element(map, key.clone(), chain);
            }
        }
        Change { from, to }
    }

    /// Records `wanted` as programmed.
    pub fn commit(&mut self, wanted: HashMap<ServiceKey, Option<Ruleset>>) {
        for (svc, new) in wanted {
            if let Some(old) = self.services.remove(&svc) {
                for (map, elements) in &old.elements {
                    for key in elements.keys() {
                        let id = (*map, key.clone());
                        if let Some(claims) = self.claims.get_mut(&id) {
                            claims.remove(&svc);
                            if claims.is_empty() {
                                self.claims.remove(&id);
                            }
                        }
                    }
                }
            }
            if let Some(mut new) = new {
                new.elements.retain(|_, m| !m.is_empty());
                for (map, elements) in &new.elements {
                    for (key, chain) in elements {
                        self.claims
                            .entry((*map, key.clone()))
                            .or_default()
                            .insert(svc.clone(), chain.clone());
                    }
                }
                self.services.insert(svc, new);
            }
        }
    }

    /// The services programmed, for a resync that must notice the ones gone.
    pub fn services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.services.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;
    use crate::nft;
    use crate::rules::{Rule, SERVICE_IPS};

    fn part(chain: &str, key: &Key) -> Ruleset {
        let mut rs = Ruleset::default();
        rs.chains
            .insert(chain.into(), vec![Rule::Goto("sep-x".into())]);
        rs.element(SERVICE_IPS, key.clone(), chain);
        rs
    }

    fn svc(name: &str) -> ServiceKey {
        ("default".into(), name.into())
    }

    /// The change's script, `ip <table> ` left out when there is one shard.
    fn apply(p: &mut Programmed, wanted: Vec<(ServiceKey, Option<Ruleset>)>) -> Vec<String> {
        let wanted: HashMap<_, _> = wanted.into_iter().collect();
        let c = p.change(&wanted);
        let script = nft::script(&nft::diff_tables(&p.tables, &c));
        let one_shard = p.tables.names().len() == 2;
        p.commit(wanted);
        script
            .lines()
            .map(|l| match one_shard {
                true => l.replace("ip t-svc-0 ", ""),
                false => l.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_change_touches_only_its_services_and_shared_keys_pass_on() {
        let shared = Key::Addr("192.0.2.1".parse().unwrap(), Proto::Tcp, 80);
        let own = Key::Addr("10.43.0.2".parse().unwrap(), Proto::Tcp, 80);
        let mut p = Programmed::new(Tables::new("t", 1));
        let ops = apply(
            &mut p,
            vec![
                (svc("b"), Some(part("ext-b", &shared))),
                (svc("c"), Some(part("svc-c", &own))),
            ],
        );
        assert!(
            ops.contains(&"add element service-ips { 192.0.2.1 . tcp . 80 : goto ext-b }".into())
        );
        // "a" sorts first: the shared key moves to it, and back to "b" when "a" goes.
        let ops = apply(&mut p, vec![(svc("a"), Some(part("ext-a", &shared)))]);
        assert_eq!(
            ops,
            [
                "add chain ext-a",
                "add rule ext-a goto sep-x",
                "delete element service-ips { 192.0.2.1 . tcp . 80 }",
                "add element service-ips { 192.0.2.1 . tcp . 80 : goto ext-a }",
            ]
        );
        let ops = apply(&mut p, vec![(svc("a"), None)]);
        assert_eq!(
            ops,
            [
                "delete element service-ips { 192.0.2.1 . tcp . 80 }",
                "add element service-ips { 192.0.2.1 . tcp . 80 : goto ext-b }",
                "flush chain ext-a",
                "delete chain ext-a",
            ]
        );
        // An unchanged service changes nothing.
        assert!(apply(&mut p, vec![(svc("c"), Some(part("svc-c", &own)))]).is_empty());
    }

    #[test]
    fn a_shared_key_moves_between_shards_with_its_claim() {
        let tables = Tables::new("t", 2);
        let shared = Key::Addr("192.0.2.1".parse().unwrap(), Proto::Tcp, 80);
        let b = svc("b");
        // A service sorting before "b" in the other shard.
        let a = (0..)
            .map(|i| svc(&format!("a{i}")))
            .find(|a| tables.shard_of(a) != tables.shard_of(&b))
            .unwrap();
        let (ta, tb) = (tables.shard_of(&a), tables.shard_of(&b));
        let mut p = Programmed::new(tables.clone());
        apply(&mut p, vec![(b, Some(part("ext-b", &shared)))]);
        let mut ops = apply(&mut p, vec![(a, Some(part("ext-a", &shared)))]);
        let (na, nb) = (tables.name(ta), tables.name(tb));
        // Tables go in index order, each table's steps in diff order.
        ops.sort();
        let mut want = [
            format!("add chain ip {na} ext-a"),
            format!("add rule ip {na} ext-a goto sep-x"),
            format!("add element ip {na} service-ips {{ 192.0.2.1 . tcp . 80 : goto ext-a }}"),
            format!("delete element ip {nb} service-ips {{ 192.0.2.1 . tcp . 80 }}"),
        ];
        want.sort();
        assert_eq!(ops, want);
    }
}
