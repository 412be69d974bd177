//! The set of resources being served: the built-in ones plus those custom resource
//! definitions add at run time. Readers get a cheap snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use api::ResourceInfo;

#[derive(Default)]
struct Index {
    /// Bumped on every change of the set, so caches know when to rebuild.
    generation: u64,
    /// Every served resource, in registration order (discovery order).
    all: Vec<Arc<ResourceInfo>>,
    /// By plural, then group and version among the few sharing it: lookups by `&str`
    /// without building an owned key on every request.
    by_plural: HashMap<String, Vec<Arc<ResourceInfo>>>,
}

/// A consistent view of the served resources.
#[derive(Clone, Default)]
pub struct Snapshot(Arc<Index>);

impl Snapshot {
    pub fn generation(&self) -> u64 {
        self.0.generation
    }

    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.0.all
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.0
            .by_plural
            .get(plural)?
            .iter()
            .rev() // the last registered wins, as a map insert would
            .find(|r| r.group == group && r.version == version)
            .cloned()
    }

    /// The resource of a kind in a group/version (used for `apiVersion`+`kind` lookups).
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.0
            .all
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// The groups served, each with its versions, in first-registration order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for r in &self.0.all {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) if !vs.contains(&r.version) => vs.push(r.version.clone()),
                Some(_) => {}
                None => out.push((r.group.clone(), vec![r.version.clone()])),
            }
        }
        out
    }

    /// The resources of one group/version.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceInfo>> {
        self.0
            .all
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }
}

/// The served resources; replaced wholesale when CRDs come and go.
#[derive(Default)]
pub struct Resources {
    current: RwLock<Snapshot>,
}

impl Resources {
    pub fn new(resources: Vec<ResourceInfo>) -> Self {
        let r = Self::default();
        r.replace(resources.into_iter().map(Arc::new).collect());
        r
    }

    pub fn snapshot(&self) -> Snapshot {
        self.current.read().clone()
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.current.read().get(group, version, plural)
    }

    fn replace(&self, all: Vec<Arc<ResourceInfo>>) {
        let mut by_plural: HashMap<String, Vec<Arc<ResourceInfo>>> = HashMap::new();
        for r in &all {
            by_plural
                .entry(r.plural.clone())
                .or_default()
                .push(r.clone());
        }
        let mut current = self.current.write();
        let generation = current.0.generation + 1;
        *current = Snapshot(Arc::new(Index {
            generation,
            all,
            by_plural,
        }));
    }

    /// Replaces every resource of `group` whose CRD is `owner` by `added` (for CRDs).
    pub fn set_dynamic(&self, remove: impl Fn(&ResourceInfo) -> bool, added: Vec<ResourceInfo>) {
        let mut all: Vec<Arc<ResourceInfo>> = self
            .current
            .read()
            .all()
            .iter()
            .filter(|r| !remove(r))
            .cloned()
            .collect();
        all.extend(added.into_iter().map(Arc::new));
        self.replace(all);
    }
}
