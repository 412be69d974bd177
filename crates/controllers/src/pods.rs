//! Helpers every workload controller shares: making pods from a template with a
//! controller reference, and reading pod state.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

/// The controller reference an owned object carries.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `owner` (by uid) is the controller of `meta`.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == owner_uid)
}

/// A new pod from a template: labels, annotations and spec copied, named by
/// `generate_name`, owned by `owner`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    generate_name: &str,
    owner: OwnerReference,
    extra_labels: &BTreeMap<String, String>,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.extend(extra_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_string()),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

pub fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Not finished and not being deleted.
pub fn is_active(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && !matches!(phase(p), "Succeeded" | "Failed")
}

/// A short stable hash of a pod template, used as `controller-revision-hash` (FNV-1a
/// over its JSON, rendered in upstream's vowel-free alphabet).
pub fn template_hash(template: &PodTemplateSpec) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let mut out = String::new();
    let mut n = h;
    loop {
        out.push(ALPHABET[(n % ALPHABET.len() as u32) as usize] as char);
        n /= ALPHABET.len() as u32;
        if n == 0 {
            break;
        }
    }
    out
}

/// Records a template as a ControllerRevision (`kubectl rollout history` reads these),
/// numbered after the highest existing revision of the owner.
pub async fn ensure_revision<K: Resource<DynamicType = ()>>(
    client: &kube::Client,
    owner: &K,
    template: &PodTemplateSpec,
    hash: &str,
) -> kube::Result<()> {
    use k8s_openapi::api::apps::v1::ControllerRevision;
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
    use kube::api::{Api, ListParams, PostParams};
    let ns = owner.meta().namespace.clone().unwrap_or_default();
    let owner_name = owner.meta().name.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let name = format!("{owner_name}-{hash}");
    if api.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let existing = api.list(&ListParams::default()).await?.items;
    let revision = existing
        .iter()
        .filter(|r| is_controlled_by(&r.metadata, &uid))
        .map(|r| r.revision)
        .max()
        .unwrap_or(0)
        + 1;
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let cr = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(
                labels
                    .into_iter()
                    .chain([("controller-revision-hash".to_string(), hash.to_string())])
                    .collect(),
            ),
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        data: Some(RawExtension(
            serde_json::json!({"spec": {"template": template}}),
        )),
        revision,
    };
    match api.create(&PostParams::default(), &cr).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
