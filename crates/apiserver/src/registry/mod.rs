//! The generic registry: one create/get/list/update/delete/watch path for every
//! resource, calling the resource's [`api::Strategy`] for what differs (upstream's
//! `registry/generic/registry.Store`).

mod codec;
mod create;
mod delete;
mod get;
mod list;
mod namespaces;
mod resources;
mod shared;
mod update;
mod watch;

use std::sync::Arc;

use serde_json::Value;
use store::Store;

use crate::admission::Admission;
use crate::allocator::{AllocError, ServiceAllocator};
use crate::auth::UserInfo;

pub use codec::{decode, encode, parse_resource_version, set_resource_version};
pub use delete::{DeleteOptions, Deleted};
pub use list::{ListPage, ListParams};
pub use resources::{Resources, Snapshot};
pub use shared::{WatchObject, watch_line};
pub use update::{UpdateMode, Updated};
pub use watch::{WatchEvent, WatchEvents, WatchParams};

/// Who is asking and how: the per-request context of a registry operation.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub user: UserInfo,
    /// `dryRun=All`: run everything but the write.
    pub dry_run: bool,
    /// The `fieldManager` the request named.
    pub field_manager: Option<String>,
    /// The manager derived from the user agent, for requests that name none.
    pub agent_manager: Option<String>,
    /// The subresource written (`status`, `scale` …), for managedFields.
    pub subresource: Option<String>,
    /// Server-side apply: the caller computed the new object's managedFields, which
    /// the registry keeps instead of recording an update.
    pub applying: bool,
}

impl Context {
    /// The context of the server's own operations (bootstrap objects, controllers
    /// running in-process).
    pub fn system() -> Self {
        Self {
            user: UserInfo::system(),
            dry_run: false,
            field_manager: None,
            agent_manager: None,
            subresource: None,
            applying: false,
        }
    }

    /// The manager of this request's writes, when they are tracked.
    pub fn manager(&self) -> Option<&str> {
        self.field_manager
            .as_deref()
            .filter(|m| !m.is_empty())
            .or(self.agent_manager.as_deref())
    }

    /// The manager an update records managedFields for: `None` for server-side apply
    /// (which records its own) and for the server's untracked writes.
    pub(crate) fn update_manager(&self) -> Option<&str> {
        if self.applying { None } else { self.manager() }
    }

    pub fn subresource(&self) -> &str {
        self.subresource.as_deref().unwrap_or_default()
    }
}

/// The generic registry over one store.
pub struct Registry {
    pub resources: Resources,
    pub store: Arc<dyn Store>,
    pub admission: Admission,
    /// ClusterIP and NodePort allocation for services.
    pub services: Option<Arc<ServiceAllocator>>,
    /// Objects of recent changes, decoded once for all watchers.
    decoded: Arc<shared::Decoded>,
    /// Which namespaces are open, for creates.
    namespaces: Arc<namespaces::NamespaceCache>,
    /// core/v1 namespaces, built in and never replaced: looked up once rather than
    /// through the shared resource set on every create.
    namespaces_info: Option<Arc<api::ResourceInfo>>,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, resources: Resources, admission: Admission) -> Self {
        Self {
            namespaces_info: resources.get("", "v1", "namespaces"),
            resources,
            store,
            admission,
            services: None,
            decoded: Arc::default(),
            namespaces: Arc::default(),
        }
    }

    /// The service allocator, when `info` is core/v1 services.
    pub(crate) fn allocator_for(&self, info: &api::ResourceInfo) -> Option<&Arc<ServiceAllocator>> {
        let is_services = info.group.is_empty() && info.plural == "services";
        self.services.as_ref().filter(|_| is_services)
    }
}

/// Maps an allocation failure of object `name` to its API error.
pub(crate) fn alloc_error(
    info: &api::ResourceInfo,
    name: &str,
    e: AllocError,
) -> crate::error::ApiError {
    match e {
        AllocError::Field(f) => crate::error::ApiError::invalid(info, name, &[f]),
        AllocError::Api(e) => e,
    }
}

/// The kind and apiVersion every stored object carries.
pub(crate) fn set_type_meta(info: &api::ResourceInfo, obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), Value::String(info.api_version()));
        o.insert("kind".into(), Value::String(info.kind.clone()));
    }
}
