//! Field ownership (upstream's `k8s.io/apiserver` fieldmanager over
//! structured-merge-diff): every write records, in `metadata.managedFields`, which
//! manager set which fields; server-side apply uses that to find conflicts and to
//! remove fields a manager stopped applying.

pub mod apply;
pub mod edit;
pub mod entries;
pub mod set;
pub mod walk;

use serde_json::Value;

use api::{ResourceInfo, meta};

pub use entries::{APPLY, Entry, Managers, UPDATE};
pub use set::{Elem, FieldSet, Path};
pub use walk::Schema;

/// Upstream's limit on manager names.
const MAX_MANAGER_LEN: usize = 128;

/// The manager of a request without `fieldManager`: the user agent up to its first
/// `/` (`kubectl/v1.33.0 (linux/amd64) …` → `kubectl`).
pub fn manager_from_user_agent(ua: &str) -> Option<String> {
    let prefix = ua.split('/').next().unwrap_or_default();
    let prefix: String = prefix.chars().take(MAX_MANAGER_LEN).collect();
    (!prefix.is_empty()).then_some(prefix)
}

/// Metadata fields nobody owns (upstream's StripMeta manager).
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Which part of the object a write may own: the main resource does not own status
/// when status is a subresource, and the status subresource owns only status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Whole,
    NoStatus,
    StatusOnly,
}

impl Scope {
    /// For a write of `subresource` ("" for the main resource) of `info`.
    pub fn of(info: &ResourceInfo, subresource: &str) -> Self {
        match subresource {
            "status" => Scope::StatusOnly,
            "" | "scale" if info.subresource("status").is_some() => Scope::NoStatus,
            _ => Scope::Whole,
        }
    }

    fn keeps(self, p: &Path) -> bool {
        let status = matches!(p.first(), Some(Elem::Field(f)) if f == "status");
        match self {
            Scope::Whole => true,
            Scope::NoStatus => !status,
            Scope::StatusOnly => status,
        }
    }

    pub fn filter(self, mut s: FieldSet) -> FieldSet {
        s.retain(|p| self.keeps(p));
        s
    }
}

/// The object as field ownership sees it: without type meta and server-owned metadata.
pub fn strip(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(o) = out.as_object_mut() {
        o.shift_remove("apiVersion");
        o.shift_remove("kind");
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_METADATA {
                m.shift_remove(*f);
            }
            if m.is_empty() {
                o.shift_remove("metadata");
            }
        }
    }
    out
}

/// Records an update (create when `old` is `None`) by `manager`: the fields it
/// changed become its own and are taken from every other manager; fields it removed
/// are no longer anyone's. Managed fields sent by the client replace the live ones
/// when they are valid and not empty (never on a subresource).
pub fn record_update(
    info: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
) {
    let schema = Schema::for_resource(info);
    let scope = Scope::of(info, subresource);
    let mut managers = match Managers::decode(new) {
        Ok(m) if subresource.is_empty() && !m.0.is_empty() => m,
        _ => old.map(Managers::decode_or_empty).unwrap_or_default(),
    };
    let empty = Value::Object(Default::default());
    let cmp = walk::compare(&schema, &strip(old.unwrap_or(&empty)), &strip(new));
    let changed = scope.filter(cmp.changed());
    let removed = scope.filter(cmp.removed);
    for e in &mut managers.0 {
        e.set = e.set.difference(&changed).difference(&removed);
    }
    if !changed.is_empty() {
        let api_version = info.api_version();
        match managers.position(manager, UPDATE, &api_version, subresource) {
            Some(i) => {
                let e = &mut managers.0[i];
                e.set = e.set.union(&changed);
                e.time = Some(meta::now());
            }
            None => managers.0.push(Entry {
                manager: manager.to_string(),
                operation: UPDATE.into(),
                api_version,
                time: Some(meta::now()),
                subresource: subresource.to_string(),
                set: changed,
            }),
        }
    }
    managers.encode(new);
}

#[cfg(test)]
mod tests;
