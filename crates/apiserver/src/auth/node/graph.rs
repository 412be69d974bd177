//! Which objects each node may reach, as upstream's node authorizer graph: a pod bound
//! to a node leads to the secrets, configmaps, claims and service account it names; a
//! PersistentVolume leads to its claim (`spec.claimRef`), and a secret a volume names
//! leads to that volume; a VolumeAttachment leads to its node.
//!
//! Rather than walking edges per request, the graph keeps for every object a pod names
//! how many pods of each node name it, so the common question (may node N read secret
//! S?) is two hash lookups; volumes add one hop.

use std::collections::{HashMap, HashSet};

/// What a pod can name, in the pod's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Secret,
    ConfigMap,
    Claim,
    ServiceAccount,
}

/// A namespace and a name.
pub type NsName = (String, String);

type Ref = (Kind, String, String);

#[derive(Debug, Default)]
struct Pod {
    /// "" while unscheduled: such a pod leads nowhere.
    node: String,
    refs: Vec<(Kind, String)>,
}

#[derive(Debug, Default)]
struct Volume {
    claim: Option<NsName>,
    secrets: Vec<NsName>,
}

/// Sorts and dedups a pod's references, the form the graph keeps them in.
pub fn normalize(refs: &mut Vec<(Kind, String)>) {
    refs.sort();
    refs.dedup();
}

#[derive(Debug, Default)]
pub struct Graph {
    pods: HashMap<NsName, Pod>,
    /// Object → node → how many of that node's pods name it.
    reach: HashMap<Ref, HashMap<String, u32>>,
    volumes: HashMap<String, Volume>,
    /// Secret → the PersistentVolumes naming it.
    volume_secrets: HashMap<NsName, HashSet<String>>,
    /// VolumeAttachment → node.
    attachments: HashMap<String, String>,
}

impl Graph {
    /// Adds or replaces a pod: bound to `node` ("" if not yet), naming `refs` (in its
    /// namespace; duplicates are fine).
    pub fn set_pod(&mut self, ns: &str, name: &str, node: &str, mut refs: Vec<(Kind, String)>) {
        normalize(&mut refs);
        if self.has_pod(ns, name, node, &refs) {
            return;
        }
        let key = (ns.to_string(), name.to_string());
        self.remove_pod(ns, name);
        if !node.is_empty() {
            for (kind, obj) in &refs {
                *self
                    .reach
                    .entry((*kind, ns.to_string(), obj.clone()))
                    .or_default()
                    .entry(node.to_string())
                    .or_default() += 1;
            }
        }
        let node = node.to_string();
        self.pods.insert(key, Pod { node, refs });
    }

    /// Whether the pod is known exactly so (`refs` as [`normalize`] leaves them):
    /// most pod updates are status changes, which need no write lock.
    pub fn has_pod(&self, ns: &str, name: &str, node: &str, refs: &[(Kind, String)]) -> bool {
        self.pods
            .get(&(ns.to_string(), name.to_string()))
            .is_some_and(|p| p.node == node && p.refs == refs)
    }

    pub fn remove_pod(&mut self, ns: &str, name: &str) {
        let Some(old) = self.pods.remove(&(ns.to_string(), name.to_string())) else {
            return;
        };
        if old.node.is_empty() {
            return;
        }
        for (kind, obj) in old.refs {
            let key = (kind, ns.to_string(), obj);
            let Some(nodes) = self.reach.get_mut(&key) else {
                continue;
            };
            if let Some(n) = nodes.get_mut(&old.node) {
                *n -= 1;
                if *n == 0 {
                    nodes.remove(&old.node);
                }
            }
            if nodes.is_empty() {
                self.reach.remove(&key);
            }
        }
    }

    pub fn clear_pods(&mut self) {
        self.pods.clear();
        self.reach.clear();
    }

    /// Adds or replaces a PersistentVolume bound to `claim`, naming `secrets`.
    pub fn set_volume(&mut self, name: &str, claim: Option<NsName>, secrets: Vec<NsName>) {
        self.remove_volume(name);
        for s in &secrets {
            self.volume_secrets
                .entry(s.clone())
                .or_default()
                .insert(name.to_string());
        }
        self.volumes
            .insert(name.to_string(), Volume { claim, secrets });
    }

    pub fn remove_volume(&mut self, name: &str) {
        let Some(old) = self.volumes.remove(name) else {
            return;
        };
        for s in old.secrets {
            if let Some(pvs) = self.volume_secrets.get_mut(&s) {
                pvs.remove(name);
                if pvs.is_empty() {
                    self.volume_secrets.remove(&s);
                }
            }
        }
    }

    pub fn clear_volumes(&mut self) {
        self.volumes.clear();
        self.volume_secrets.clear();
    }

    pub fn set_attachment(&mut self, name: &str, node: &str) {
        self.attachments.insert(name.to_string(), node.to_string());
    }

    pub fn remove_attachment(&mut self, name: &str) {
        self.attachments.remove(name);
    }

    pub fn clear_attachments(&mut self) {
        self.attachments.clear();
    }

    /// The node a known pod is bound to ("" if none); `None` for a pod not seen.
    pub fn pod_node(&self, ns: &str, name: &str) -> Option<&str> {
        self.pods
            .get(&(ns.to_string(), name.to_string()))
            .map(|p| p.node.as_str())
    }

    /// Whether a pod bound to `node` names the object.
    pub fn named_by_pod_on(&self, node: &str, kind: Kind, ns: &str, name: &str) -> bool {
        self.reach
            .get(&(kind, ns.to_string(), name.to_string()))
            .is_some_and(|nodes| nodes.contains_key(node))
    }

    /// Whether the PersistentVolume is bound to a claim a pod on `node` uses.
    pub fn volume_reaches(&self, node: &str, name: &str) -> bool {
        self.volumes
            .get(name)
            .and_then(|v| v.claim.as_ref())
            .is_some_and(|(ns, claim)| self.named_by_pod_on(node, Kind::Claim, ns, claim))
    }

    /// Whether `node` may read the secret: a pod on it names it, or a volume of such a
    /// pod does.
    pub fn secret_reaches(&self, node: &str, ns: &str, name: &str) -> bool {
        self.named_by_pod_on(node, Kind::Secret, ns, name)
            || self
                .volume_secrets
                .get(&(ns.to_string(), name.to_string()))
                .is_some_and(|pvs| pvs.iter().any(|pv| self.volume_reaches(node, pv)))
    }

    pub fn attachment_reaches(&self, node: &str, name: &str) -> bool {
        self.attachments.get(name).is_some_and(|n| n == node)
    }

    /// How many objects some node reaches through pods (for tests and logs).
    pub fn reachable_count(&self) -> usize {
        self.reach.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(list: &[(Kind, &str)]) -> Vec<(Kind, String)> {
        list.iter().map(|(k, n)| (*k, n.to_string())).collect()
    }

    #[test]
    fn binding_and_deleting_pods_adds_and_removes_edges() {
        let mut g = Graph::default();
        let web = refs(&[(Kind::Secret, "db"), (Kind::ConfigMap, "conf")]);
        g.set_pod("default", "web", "", web.clone());
        assert!(!g.named_by_pod_on("n1", Kind::Secret, "default", "db"));
        assert_eq!(g.pod_node("default", "web"), Some(""));

        g.set_pod("default", "web", "n1", web.clone());
        assert!(g.secret_reaches("n1", "default", "db"));
        assert!(g.named_by_pod_on("n1", Kind::ConfigMap, "default", "conf"));
        assert!(!g.secret_reaches("n2", "default", "db"));
        assert!(!g.secret_reaches("n1", "other", "db"));

        // A second pod on another node naming the same secret; deleting one keeps the
        // other's edge.
        g.set_pod("default", "api", "n2", refs(&[(Kind::Secret, "db")]));
        g.remove_pod("default", "web");
        assert!(!g.secret_reaches("n1", "default", "db"));
        assert!(!g.named_by_pod_on("n1", Kind::ConfigMap, "default", "conf"));
        assert!(g.secret_reaches("n2", "default", "db"));
        assert_eq!(g.pod_node("default", "web"), None);
        g.remove_pod("default", "api");
        assert_eq!(g.reachable_count(), 0);
    }

    #[test]
    fn a_changed_pod_moves_its_edges() {
        let mut g = Graph::default();
        g.set_pod(
            "ns",
            "p",
            "n1",
            refs(&[(Kind::Secret, "a"), (Kind::Secret, "a")]),
        );
        g.set_pod("ns", "p", "n1", refs(&[(Kind::Secret, "b")]));
        assert!(!g.secret_reaches("n1", "ns", "a"));
        assert!(g.secret_reaches("n1", "ns", "b"));
        assert!(g.has_pod("ns", "p", "n1", &refs(&[(Kind::Secret, "b")])));
        assert!(!g.has_pod("ns", "p", "n2", &refs(&[(Kind::Secret, "b")])));
        g.clear_pods();
        assert!(!g.secret_reaches("n1", "ns", "b"));
    }

    #[test]
    fn volumes_lead_through_their_claim() {
        let mut g = Graph::default();
        g.set_pod("ns", "p", "n1", refs(&[(Kind::Claim, "data")]));
        let claim = Some(("ns".to_string(), "data".to_string()));
        let secret = ("ns".to_string(), "csi-creds".to_string());
        g.set_volume("pv1", claim, vec![secret]);
        assert!(g.volume_reaches("n1", "pv1"));
        assert!(!g.volume_reaches("n2", "pv1"));
        assert!(g.secret_reaches("n1", "ns", "csi-creds"));
        g.remove_pod("ns", "p");
        assert!(!g.volume_reaches("n1", "pv1"));
        assert!(!g.secret_reaches("n1", "ns", "csi-creds"));
        g.remove_volume("pv1");
        assert!(g.volume_secrets.is_empty());
    }

    #[test]
    fn attachments_name_their_node() {
        let mut g = Graph::default();
        g.set_attachment("va", "n1");
        assert!(g.attachment_reaches("n1", "va"));
        assert!(!g.attachment_reaches("n2", "va"));
        g.remove_attachment("va");
        assert!(!g.attachment_reaches("n1", "va"));
    }
}
