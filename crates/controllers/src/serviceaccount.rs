//! ServiceAccount controller: every namespace has a `default` ServiceAccount
//! (recreated if deleted), and the root CA publisher: every namespace has the
//! `kube-root-ca.crt` ConfigMap with the cluster CA, which in-pod clients trust.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::{Error, Result};

pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

struct Ctx {
    client: kube::Client,
    /// The cluster CA in PEM, published to every namespace; `None` skips publishing.
    root_ca: Option<String>,
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ns.metadata.name.clone().unwrap_or_default();
    let sas: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    if sas.get_opt("default").await?.is_none() {
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match sas.create(&PostParams::default(), &sa).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                return Ok(Action::await_change());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(ca) = &ctx.root_ca {
        let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
        let current = cms.get_opt(ROOT_CA_CONFIGMAP).await?;
        let up_to_date = current
            .as_ref()
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("ca.crt"))
            .is_some_and(|v| v == ca);
        if !up_to_date {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(ROOT_CA_CONFIGMAP.into()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_string(),
                        "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.".to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([("ca.crt".to_string(), ca.clone())])),
                ..Default::default()
            };
            let pp = PatchParams::apply("root-ca-cert-publisher").force();
            match cms.patch(ROOT_CA_CONFIGMAP, &pp, &Patch::Apply(&cm)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Action::requeue(Duration::from_secs(600)))
}

fn error_policy(_ns: Arc<Namespace>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "serviceaccount controller retry");
    Action::requeue(Duration::from_secs(2))
}

/// Runs until dropped.
pub async fn run(client: kube::Client, root_ca: Option<String>) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let sas: Api<ServiceAccount> = Api::all(client.clone());
    let cms: Api<ConfigMap> = Api::all(client.clone());
    let ns_of = |meta: &ObjectMeta| {
        meta.namespace
            .clone()
            .map(|n| ObjectRef::<Namespace>::new(&n))
    };
    Controller::new(namespaces, watcher::Config::default())
        .watches(
            sas,
            watcher::Config::default().fields("metadata.name=default"),
            move |sa| ns_of(&sa.metadata),
        )
        .watches(
            cms,
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}")),
            move |cm| ns_of(&cm.metadata),
        )
        .run(reconcile, error_policy, Arc::new(Ctx { client, root_ca }))
        .for_each(|_| async {})
        .await;
}
