//! The routing table: every served Ingress's rules with their backends resolved to
//! ready endpoints, and the TLS certificates by host. Rebuilt whole from the caches on
//! every change (pure data), swapped in atomically for the listeners.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use rustls::sign::CertifiedKey;

use crate::backends::{Endpoints, Pool, PortRef};
use crate::certs::Certs;
use crate::routes::{PathType, Router};

/// Where matching requests go.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port`, for logs.
    pub name: String,
    pub pool: Pool,
    /// An ExternalName Service's DNS name and port, looked up per request (the pool
    /// is then empty).
    pub external: Option<(String, u16)>,
}

/// What the API says, from the watch caches.
pub struct Inputs<'a> {
    pub ingresses: &'a [Arc<Ingress>],
    pub classes: &'a [Arc<IngressClass>],
    pub services: &'a [Arc<Service>],
    pub slices: &'a [Arc<EndpointSlice>],
    pub secrets: &'a [Arc<Secret>],
}

type BackendKey = (String, String, PortRef);
/// A Secret's namespace and name.
type SecretKey = (String, String);
/// A parsed key pair with the Secret's resourceVersion; `None` if it is unusable.
type ParsedKey = (Option<String>, Option<Arc<CertifiedKey>>);

#[derive(Debug, Default)]
pub struct Table {
    pub router: Router<Arc<Backend>>,
    pub certs: Certs,
    /// Kept so the next table reuses unchanged backends (their round-robin position)
    /// and parsed key pairs.
    backends: HashMap<BackendKey, Arc<Backend>>,
    keys: HashMap<SecretKey, ParsedKey>,
}

/// The served Ingresses, oldest first (their rules win ties).
pub fn served<'a>(
    ingresses: &'a [Arc<Ingress>],
    classes: &[Arc<IngressClass>],
) -> Vec<&'a Ingress> {
    let mut served: Vec<&Ingress> = ingresses
        .iter()
        .map(|i| i.as_ref())
        .filter(|i| crate::class::serves(i, classes))
        .collect();
    served.sort_by(|a, b| {
        let key = |i: &'a Ingress| {
            let m = &i.metadata;
            (
                m.creation_timestamp.clone().map(|t| t.0),
                m.namespace.clone(),
                m.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    served
}

pub fn build(inputs: &Inputs, previous: Option<&Table>) -> Table {
    let endpoints = Endpoints::new(inputs.services, inputs.slices);
    let secrets: HashMap<(&str, &str), &Secret> = inputs
        .secrets
        .iter()
        .filter_map(|s| {
            Some((
                (
                    s.metadata.namespace.as_deref()?,
                    s.metadata.name.as_deref()?,
                ),
                s.as_ref(),
            ))
        })
        .collect();
    let mut table = Table::default();
    for ing in served(inputs.ingresses, inputs.classes) {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        let Some(spec) = &ing.spec else { continue };
        let mut backend =
            |b: &IngressBackend| table_backend(&mut table.backends, previous, &endpoints, ns, b);
        if let Some(b) = &spec.default_backend {
            let b = backend(b);
            table.router.set_default(b);
        }
        for rule in spec.rules.iter().flatten() {
            for path in rule.http.iter().flat_map(|h| &h.paths) {
                let kind = PathType::parse(Some(path.path_type.as_str()));
                let target = backend(&path.backend);
                let p = path.path.as_deref().unwrap_or_default();
                table.router.add(rule.host.as_deref(), p, kind, target);
            }
        }
        for tls in spec.tls.iter().flatten() {
            let Some(name) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let secret = secrets.get(&(ns, name)).copied();
            let key = key_pair(&mut table.keys, previous, ns, name, secret);
            if let Some(key) = key {
                table
                    .certs
                    .add(tls.hosts.as_deref().unwrap_or_default(), key);
            }
        }
    }
    table.router.finish();
    table
}

fn table_backend(
    backends: &mut HashMap<BackendKey, Arc<Backend>>,
    previous: Option<&Table>,
    endpoints: &Endpoints,
    ns: &str,
    b: &IngressBackend,
) -> Arc<Backend> {
    let Some(svc) = &b.service else {
        // Resource backends (`spec.backend.resource`) are not served: 503.
        return Arc::new(Backend {
            name: format!("{ns}/resource"),
            pool: Pool::default(),
            external: None,
        });
    };
    let port = match svc.port.as_ref() {
        Some(p) => match (p.number, &p.name) {
            (Some(n), _) => PortRef::Number(n),
            (None, Some(name)) => PortRef::Name(name.clone()),
            (None, None) => PortRef::Number(0),
        },
        None => PortRef::Number(0),
    };
    let key = (ns.to_string(), svc.name.clone(), port);
    if let Some(b) = backends.get(&key) {
        return b.clone();
    }
    let addrs = endpoints.resolve(ns, &svc.name, &key.2);
    let external = endpoints.external_name(ns, &svc.name, &key.2);
    let reused = previous
        .and_then(|t| t.backends.get(&key))
        .filter(|b| b.pool.addrs == addrs && b.external == external);
    let backend = reused.cloned().unwrap_or_else(|| {
        Arc::new(Backend {
            name: format!("{ns}/{}:{}", svc.name, key.2),
            pool: Pool::new(addrs),
            external,
        })
    });
    backends.insert(key, backend.clone());
    backend
}

/// The key pair of a TLS Secret, parsed once per resourceVersion.
fn key_pair(
    keys: &mut HashMap<SecretKey, ParsedKey>,
    previous: Option<&Table>,
    ns: &str,
    name: &str,
    secret: Option<&Secret>,
) -> Option<Arc<CertifiedKey>> {
    let id = (ns.to_string(), name.to_string());
    let secret = secret?;
    let version = secret.metadata.resource_version.clone();
    if let Some((v, k)) = keys
        .get(&id)
        .or_else(|| previous.and_then(|t| t.keys.get(&id)))
        && *v == version
    {
        let k = k.clone();
        keys.insert(id, (version, k.clone()));
        return k;
    }
    let parsed = match crate::certs::from_secret(secret) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(secret = %format!("{ns}/{name}"), error = %e, "unusable TLS secret; its hosts get the default certificate");
            None
        }
    };
    keys.insert(id, (version, parsed.clone()));
    parsed
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
