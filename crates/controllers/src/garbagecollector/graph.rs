//! The ownership graph (upstream's GraphBuilder): every object with its owner
//! references, indexed by uid, with each owner's dependents. Changes seen by the
//! monitors update it and say which objects need a look: dependents whose owners are
//! gone or being deleted in the foreground, owners waiting to orphan or to see their
//! dependents go.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::discovery::ApiResource;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// Which resource an object is, and where: enough to get, patch and delete it.
#[derive(Clone, Debug)]
pub struct Identity {
    pub resource: Arc<ApiResource>,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Default)]
pub struct Node {
    /// `None` for an owner only known from references so far.
    pub identity: Option<Identity>,
    pub owners: Vec<OwnerReference>,
    pub dependents: HashSet<String>,
    pub being_deleted: bool,
    /// Being deleted in the foreground: waits for its blocking dependents.
    pub deleting_dependents: bool,
    pub orphaning: bool,
}

/// What a graph change asks the collector to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// Check whether this object's owners are gone (or, for an owner being deleted in
    /// the foreground, whether its dependents are).
    AttemptToDelete(String),
    /// Remove this owner's references from its dependents, then its orphan finalizer.
    AttemptToOrphan(String),
}

#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid).filter(|n| n.identity.is_some())
    }

    pub fn len(&self) -> usize {
        self.nodes.values().filter(|n| n.identity.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dependents whose reference to `owner` blocks its foreground deletion.
    pub fn blocking_dependents(&self, owner: &str) -> Vec<String> {
        let Some(node) = self.nodes.get(owner) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter(|d| {
                self.nodes.get(*d).is_some_and(|dep| {
                    dep.owners
                        .iter()
                        .any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
                })
            })
            .cloned()
            .collect()
    }

    /// An object was created or changed.
    pub fn apply(&mut self, identity: Identity, meta: &ObjectMeta) -> Vec<Work> {
        let uid = identity.uid.clone();
        let owners = meta.owner_references.clone().unwrap_or_default();
        let being_deleted = meta.deletion_timestamp.is_some();
        let deleting_dependents = being_deleted && has(meta, FOREGROUND);
        let orphaning = being_deleted && has(meta, ORPHAN);
        let mut work = Vec::new();

        let node = self.nodes.entry(uid.clone()).or_default();
        let was = (
            node.identity.is_some(),
            node.deleting_dependents,
            node.orphaning,
        );
        let old_owners = std::mem::replace(&mut node.owners, owners.clone());
        node.identity = Some(identity);
        node.being_deleted = being_deleted;
        node.deleting_dependents = deleting_dependents;
        node.orphaning = orphaning;

        // Keep the owners' dependent sets in step with the references.
        let old_uids: HashSet<&str> = old_owners.iter().map(|r| r.uid.as_str()).collect();
        let new_uids: HashSet<&str> = owners.iter().map(|r| r.uid.as_str()).collect();
        for gone in old_uids.difference(&new_uids) {
            if let Some(owner) = self.nodes.get_mut(*gone) {
                owner.dependents.remove(&uid);
                // An owner waiting for its dependents may now be free to go.
                if owner.deleting_dependents {
                    work.push(Work::AttemptToDelete(gone.to_string()));
                }
            }
        }
        for added in new_uids.difference(&old_uids) {
            self.nodes
                .entry(added.to_string())
                .or_default()
                .dependents
                .insert(uid.clone());
        }
        let changed_blocking = old_owners.iter().any(|o| {
            owners
                .iter()
                .any(|n| n.uid == o.uid && n.block_owner_deletion != o.block_owner_deletion)
        });
        if changed_blocking {
            for r in &owners {
                work.push(Work::AttemptToDelete(r.uid.clone()));
            }
        }

        // Dependents of absent owners, or of owners going away in the foreground.
        let owner_gone_or_going = owners.iter().any(|r| match self.get(&r.uid) {
            None => true,
            Some(o) => o.deleting_dependents,
        });
        if owner_gone_or_going && (!was.0 || old_owners != owners) {
            work.push(Work::AttemptToDelete(uid.clone()));
        }
        if orphaning && !was.2 {
            work.push(Work::AttemptToOrphan(uid.clone()));
        }
        if deleting_dependents && !was.1 {
            let deps: Vec<String> = self.nodes[&uid].dependents.iter().cloned().collect();
            work.extend(deps.into_iter().map(Work::AttemptToDelete));
            work.push(Work::AttemptToDelete(uid.clone()));
        }
        work
    }

    /// An object was deleted: its dependents may now be garbage, and owners waiting
    /// for it may finish.
    pub fn delete(&mut self, uid: &str) -> Vec<Work> {
        let mut work = Vec::new();
        let Some(node) = self.nodes.remove(uid) else {
            return work;
        };
        for r in &node.owners {
            if let Some(owner) = self.nodes.get_mut(&r.uid) {
                owner.dependents.remove(uid);
                if owner.deleting_dependents {
                    work.push(Work::AttemptToDelete(r.uid.clone()));
                }
                if owner.identity.is_none() && owner.dependents.is_empty() {
                    self.nodes.remove(&r.uid);
                }
            }
        }
        if !node.dependents.is_empty() {
            work.extend(node.dependents.iter().cloned().map(Work::AttemptToDelete));
            // Keep a placeholder holding the dependents until they are gone.
            self.nodes.insert(
                uid.to_string(),
                Node {
                    dependents: node.dependents,
                    ..Default::default()
                },
            );
        }
        work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uid: &str) -> Identity {
        Identity {
            resource: Arc::new(ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(
                &(),
            )),
            namespace: Some("ns".into()),
            name: uid.into(),
            uid: uid.into(),
        }
    }

    fn meta(owners: &[(&str, bool)], deleting: bool, finalizers: &[&str]) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(
                owners
                    .iter()
                    .map(|(u, block)| OwnerReference {
                        uid: u.to_string(),
                        block_owner_deletion: Some(*block),
                        ..Default::default()
                    })
                    .collect(),
            ),
            deletion_timestamp: deleting.then(|| {
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
            }),
            finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn dependents_of_deleted_owners_are_checked() {
        let mut g = Graph::default();
        assert!(g.apply(id("owner"), &meta(&[], false, &[])).is_empty());
        assert!(
            g.apply(id("pod"), &meta(&[("owner", true)], false, &[]))
                .is_empty()
        );
        assert_eq!(g.delete("owner"), [Work::AttemptToDelete("pod".into())]);
        assert!(g.get("owner").is_none());
        g.delete("pod");
        assert!(
            g.nodes.is_empty(),
            "placeholder dropped with its last dependent"
        );
    }

    #[test]
    fn a_dependent_of_an_unknown_owner_is_checked() {
        let mut g = Graph::default();
        assert_eq!(
            g.apply(id("pod"), &meta(&[("ghost", true)], false, &[])),
            [Work::AttemptToDelete("pod".into())]
        );
        // Its owner shows up: nothing to do.
        assert!(g.apply(id("ghost"), &meta(&[], false, &[])).is_empty());
        assert_eq!(g.get("ghost").unwrap().dependents.len(), 1);
    }

    #[test]
    fn foreground_and_orphan_deletions_start_work() {
        let mut g = Graph::default();
        g.apply(id("rs"), &meta(&[], false, &[]));
        g.apply(id("a"), &meta(&[("rs", true)], false, &[]));
        g.apply(id("b"), &meta(&[("rs", false)], false, &[]));
        let mut work = g.apply(id("rs"), &meta(&[], true, &[FOREGROUND]));
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(work.len(), 3);
        assert_eq!(g.blocking_dependents("rs"), ["a"]);
        assert_eq!(g.delete("a"), [Work::AttemptToDelete("rs".into())]);
        assert!(g.blocking_dependents("rs").is_empty());
        g.apply(id("other"), &meta(&[], false, &[]));
        assert_eq!(
            g.apply(id("other"), &meta(&[], true, &[ORPHAN])),
            [Work::AttemptToOrphan("other".into())]
        );
    }
}
