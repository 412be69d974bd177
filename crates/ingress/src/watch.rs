//! The node side's caches: Ingresses, IngressClasses, Services, EndpointSlices and TLS
//! Secrets, from watches; every change batch rebuilds the table.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::Api;
use kube::runtime::watcher;
use tokio::sync::{Notify, watch};

use crate::table::{self, Inputs, Table};

/// Keeps `table` the table of the API's objects; it stays `None` (requests get 503)
/// until every cache has filled, so a half-filled one never answers 404 for routes
/// that exist.
pub async fn run(client: kube::Client, table: watch::Sender<Option<Arc<Table>>>) {
    let changed = Arc::new(Notify::new());
    let all = watcher::Config::default;
    let (ingresses, t1) = crate::reflect(Api::<Ingress>::all(client.clone()), all(), &changed);
    let (classes, t2) = crate::reflect(Api::<IngressClass>::all(client.clone()), all(), &changed);
    let (services, t3) = crate::reflect(Api::<Service>::all(client.clone()), all(), &changed);
    let (slices, t4) = crate::reflect(Api::<EndpointSlice>::all(client.clone()), all(), &changed);
    let tls = all().fields("type=kubernetes.io/tls");
    let (secrets, t5) = crate::reflect(Api::<Secret>::all(client), tls, &changed);
    let _stop = crate::AbortOnDrop(vec![t1, t2, t3, t4, t5]);
    for ready in [
        ingresses.wait_until_ready().await,
        classes.wait_until_ready().await,
        services.wait_until_ready().await,
        slices.wait_until_ready().await,
        secrets.wait_until_ready().await,
    ] {
        if ready.is_err() {
            return;
        }
    }
    tracing::info!("ingress caches filled; serving");
    let mut current: Option<Arc<Table>> = None;
    loop {
        let (i, c, s, e, x) = (
            ingresses.state(),
            classes.state(),
            services.state(),
            slices.state(),
            secrets.state(),
        );
        let inputs = Inputs {
            ingresses: &i,
            classes: &c,
            services: &s,
            slices: &e,
            secrets: &x,
        };
        let next = Arc::new(table::build(&inputs, current.as_deref()));
        current = Some(next.clone());
        table.send_replace(Some(next));
        changed.notified().await;
    }
}
