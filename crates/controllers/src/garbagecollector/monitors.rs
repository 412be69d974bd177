//! What the collector watches: every resource that can be listed, watched and
//! deleted (from discovery, refreshed periodically so custom resources join), each
//! through a metadata-only informer feeding the graph.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use crate::runtime::{Change, Informer};

/// Upstream's default: events are never owners and far too many to watch.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

pub type Meta = PartialObjectMeta<DynamicObject>;

/// A resource type and whether its objects live in namespaces.
#[derive(Clone, Debug)]
pub struct Resource {
    pub api: Arc<ApiResource>,
    pub namespaced: bool,
}

impl Resource {
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.api.group, self.api.version, self.api.plural
        )
    }
}

/// The server's resource types, by what owner references name.
#[derive(Default)]
pub struct Resources {
    /// Deletable, listable and watchable types: the ones monitored.
    pub monitored: Vec<Resource>,
    by_gvk: HashMap<(String, String, String), Resource>,
    by_group_kind: HashMap<(String, String), Resource>,
}

impl Resources {
    pub async fn discover(client: &kube::Client) -> kube::Result<Self> {
        let discovery = Discovery::new(client.clone()).run().await?;
        let mut out = Self::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let r = Resource {
                        namespaced: caps.scope == Scope::Namespaced,
                        api: Arc::new(ar.clone()),
                    };
                    out.by_gvk
                        .insert((ar.group.clone(), ar.version.clone(), ar.kind.clone()), r);
                }
            }
            for (ar, caps) in group.recommended_resources() {
                let r = Resource {
                    namespaced: caps.scope == Scope::Namespaced,
                    api: Arc::new(ar.clone()),
                };
                out.by_group_kind
                    .insert((ar.group.clone(), ar.kind.clone()), r.clone());
                let usable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                    .iter()
                    .all(|v| caps.supports_operation(v));
                let ignored = IGNORED.contains(&(ar.group.as_str(), ar.plural.as_str()));
                if usable && !ignored {
                    out.monitored.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The type an owner reference names: its exact version if served, else the
    /// group's preferred version of that kind.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Resource> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.by_gvk
            .get(&(group.into(), version.into(), kind.into()))
            .or_else(|| self.by_group_kind.get(&(group.into(), kind.into())))
            .cloned()
    }
}

/// A change seen by one monitor.
pub type Event = (Resource, Change<Meta>);

/// A running monitor.
pub struct Monitor {
    pub informer: Informer<Meta>,
    tasks: [AbortHandle; 2],
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts watching `resource`, sending its changes to `events`.
pub fn start(
    client: &kube::Client,
    resource: Resource,
    events: mpsc::UnboundedSender<Event>,
    tasks: &mut JoinSet<()>,
) -> Monitor {
    let informer = Informer::<Meta>::new();
    let mut changes = informer.subscribe();
    let api: Api<Meta> = Api::all_with(client.clone(), &*resource.api);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let run = tasks.spawn(informer.clone().run(stream));
    let forward = tasks.spawn(async move {
        while let Some(change) = changes.recv().await {
            if events.send((resource.clone(), change)).is_err() {
                return;
            }
        }
    });
    Monitor {
        informer,
        tasks: [run, forward],
    }
}
