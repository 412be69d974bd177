//! Mirror pods: the API's view of a static pod, as upstream's mirror client makes
//! them. A copy of the static pod with the `kubernetes.io/config.mirror` annotation
//! (the static pod's hash) and the Node as its controller owner; the API gives it a
//! UID of its own. The kubelet reports the static pod's status on it, never runs it,
//! and replaces it when it is deleted or its hash no longer matches.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};

use super::manifest::HASH;

/// On a mirror pod: the hash of the static pod it mirrors.
pub const MIRROR: &str = "kubernetes.io/config.mirror";

/// Whether an API pod is a mirror pod (the kubelet runs the static pod instead).
pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, MIRROR).is_some()
}

pub fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    let a = pod.metadata.annotations.as_ref()?;
    a.get(key).map(String::as_str)
}

/// What the kubelet tracks of a mirror pod in the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub uid: String,
    pub hash: String,
    /// Being deleted (by a user): upstream force-deletes it and makes a new one.
    pub deleting: bool,
}

impl Mirror {
    pub fn of(pod: &Pod) -> Option<Mirror> {
        Some(Mirror {
            uid: pod.metadata.uid.clone()?,
            hash: annotation(pod, MIRROR)?.to_string(),
            deleting: pod.metadata.deletion_timestamp.is_some(),
        })
    }

    /// Whether it mirrors `static_pod` as it is now.
    pub fn matches(&self, static_pod: &Pod) -> bool {
        !self.deleting && annotation(static_pod, HASH) == Some(self.hash.as_str())
    }
}

/// The mirror pod to create for `static_pod` on the node (name, UID).
pub fn build(static_pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut pod = static_pod.clone();
    let m = &mut pod.metadata;
    // The API assigns its own; the static pod's UID stays the kubelet's.
    m.uid = None;
    m.resource_version = None;
    let hash = annotation(static_pod, HASH).unwrap_or_default().to_string();
    m.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(MIRROR.into(), hash);
    m.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: node_uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    pod.status = None;
    pod
}

/// Creates the mirror pod of `static_pod`; returns what the API made.
pub async fn create(client: &kube::Client, static_pod: &Pod, node: &str) -> kube::Result<Pod> {
    let node_uid = Api::<Node>::all(client.clone())
        .get(node)
        .await?
        .metadata
        .uid
        .unwrap_or_default();
    let mirror = build(static_pod, node, &node_uid);
    let ns = mirror.metadata.namespace.as_deref().unwrap_or("default");
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &mirror)
        .await
}

/// Deletes a mirror pod at once (grace 0), only if it is still the one with `uid`.
pub async fn delete(client: &kube::Client, ns: &str, name: &str, uid: &str) -> kube::Result<()> {
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match Api::<Pod>::namespaced(client.clone(), ns)
        .delete(name, &dp)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn static_pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-n1".into()),
                namespace: Some("default".into()),
                uid: Some("abc".into()),
                annotations: Some(BTreeMap::from([
                    (HASH.to_string(), "abc".to_string()),
                    (super::super::manifest::SOURCE.into(), "file".into()),
                ])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn mirror_carries_the_hash_and_the_node_as_owner() {
        let m = build(&static_pod(), "n1", "node-uid");
        assert!(is_mirror(&m));
        assert!(!is_mirror(&static_pod()));
        assert_eq!(annotation(&m, MIRROR), Some("abc"));
        assert_eq!(m.metadata.uid, None);
        assert_eq!(m.metadata.name.as_deref(), Some("web-n1"));
        let owner = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "n1", "node-uid")
        );
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn a_mirror_matches_its_static_pod_until_deleted_or_changed() {
        let mut api = build(&static_pod(), "n1", "u");
        api.metadata.uid = Some("mirror-uid".into());
        let mirror = Mirror::of(&api).unwrap();
        assert_eq!(mirror.uid, "mirror-uid");
        assert!(mirror.matches(&static_pod()));
        let mut edited = static_pod();
        edited
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(HASH.into(), "def".into());
        assert!(!mirror.matches(&edited));
        api.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert!(!Mirror::of(&api).unwrap().matches(&static_pod()));
    }
}
