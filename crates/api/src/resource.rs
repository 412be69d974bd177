//! What the API server needs to know about a resource to serve it: names, scope,
//! verbs, subresources and where its objects live in the store.

use std::sync::Arc;

use crate::fields::Fields;
use crate::strategy::Strategy;
use crate::table::Printer;

/// The verbs of an ordinary read-write resource, as discovery lists them.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One subresource (`pods/status`, `deployments/scale`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// The name after the slash: `status`, `scale`, `log`, …
    pub name: String,
    /// Group of the subresource's kind (`autoscaling` for scale), "" for core.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// A resource as served at one group/version.
#[derive(Clone)]
pub struct ResourceInfo {
    /// API group; "" for the core group served under `/api`.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Lower-case plural, the path segment: `pods`, `deployments`.
    pub plural: String,
    /// Lower-case singular: `pod`.
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub subresources: Vec<Subresource>,
    /// Store key prefix without trailing slash, upstream's etcd layout:
    /// `/registry/minions` for nodes, `/registry/services/specs` for services.
    /// Objects live at `<prefix>/<namespace>/<name>` or `<prefix>/<name>`.
    pub storage_prefix: String,
    /// The rules for this resource.
    pub strategy: Arc<dyn Strategy>,
    /// Server-side Table printing.
    pub printer: Arc<dyn Printer>,
    /// What field selectors may match on.
    pub selectable_fields: Arc<dyn Fields>,
    /// Defined by a CustomResourceDefinition rather than built in.
    pub custom: bool,
}

impl std::fmt::Debug for ResourceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceInfo")
            .field("group", &self.group)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("plural", &self.plural)
            .field("namespaced", &self.namespaced)
            .finish_non_exhaustive()
    }
}

impl ResourceInfo {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`, as kubectl and error messages name a resource.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}/{}/{}", self.storage_prefix, ns, name),
            _ => format!("{}/{}", self.storage_prefix, name),
        }
    }

    /// The store prefix of a list: all objects, or those of one namespace.
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}/{}/", self.storage_prefix, ns),
            _ => format!("{}/", self.storage_prefix),
        }
    }
}
