//! Prometheus metrics under CoreDNS's names and labels (its `prometheus` plugin on
//! :9153), so the `kube-dns` Service's `metrics` port and the dashboards written for
//! CoreDNS find what they expect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Which part of the server wrote a response (CoreDNS's `plugin` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plugin {
    /// A cluster name, answered from the zone.
    Kubernetes,
    /// Sent to the node's resolvers.
    Forward,
    /// Refused before any lookup (malformed or unsupported requests).
    None,
}

impl Plugin {
    fn label(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Forward => "forward",
            Self::None => "",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: String,
    zone: String,
    view: String,
    proto: String,
    family: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    server: String,
    zone: String,
    view: String,
    rcode: String,
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    server: String,
    zone: String,
    view: String,
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
    goversion: String,
}

/// One finished request, as the server saw it.
pub struct Observation<'a> {
    pub tcp: bool,
    pub ipv6: bool,
    /// The question's type as CoreDNS names it (`A`, `AAAA`, …; `other` otherwise).
    pub qtype: &'a str,
    /// The reply sent (None: nothing was sent).
    pub reply: Option<&'a [u8]>,
    pub plugin: Plugin,
    pub took: Duration,
}

/// The counters of one DNS server.
pub struct Metrics {
    server: String,
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    responses: Family<ResponseLabels, Counter>,
    durations: Family<DurationLabels, Histogram>,
}

impl Metrics {
    /// `listen`: the DNS server's address; CoreDNS's `server` label is `dns://:<port>`.
    pub fn new(listen: SocketAddr) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let responses = Family::<ResponseLabels, Counter>::default();
        // CoreDNS's buckets: 0.25 ms doubling up to about 8 s.
        let durations = Family::<DurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00025, 2.0, 16))
        });
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                revision: "k8rs".into(),
                goversion: "none (Rust)".into(),
            })
            .set(1);
        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "coredns_dns_requests",
            "Counter of DNS requests made per zone, protocol and family.",
            requests.clone(),
        );
        registry.register(
            "coredns_dns_responses",
            "Counter of response status codes.",
            responses.clone(),
        );
        registry.register(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per zone.",
            durations.clone(),
        );
        registry.register(
            "coredns_build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            build,
        );
        Self {
            server: format!("dns://:{}", listen.port()),
            registry: Mutex::new(registry),
            requests,
            responses,
            durations,
        }
    }

    pub fn observe(&self, o: Observation<'_>) {
        // Every request is counted in the root zone, as CoreDNS does for a server
        // block on `.`.
        let zone = ".".to_string();
        self.requests
            .get_or_create(&RequestLabels {
                server: self.server.clone(),
                zone: zone.clone(),
                view: String::new(),
                proto: if o.tcp { "tcp" } else { "udp" }.into(),
                family: if o.ipv6 { "2" } else { "1" }.into(),
                r#type: o.qtype.into(),
            })
            .inc();
        self.durations
            .get_or_create(&DurationLabels {
                server: self.server.clone(),
                zone: zone.clone(),
                view: String::new(),
                r#type: o.qtype.into(),
            })
            .observe(o.took.as_secs_f64());
        if let Some(reply) = o.reply {
            self.responses
                .get_or_create(&ResponseLabels {
                    server: self.server.clone(),
                    zone,
                    view: String::new(),
                    rcode: rcode_name(reply).into(),
                    plugin: o.plugin.label().into(),
                })
                .inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }
}

/// The response code in a reply's header (the low four bits of byte 3), by its name.
fn rcode_name(reply: &[u8]) -> &'static str {
    match reply.get(3).map(|b| b & 0x0f) {
        Some(0) => "NOERROR",
        Some(1) => "FORMERR",
        Some(2) => "SERVFAIL",
        Some(3) => "NXDOMAIN",
        Some(4) => "NOTIMP",
        Some(5) => "REFUSED",
        _ => "OTHER",
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let body = metrics.render();
            async move {
                (
                    [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    body,
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the DNS metrics listener failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_are_counted_under_coredns_names() {
        let m = Metrics::new("10.0.0.1:53".parse().unwrap());
        let nxdomain = [0u8, 1, 0x81, 0x83];
        for _ in 0..2 {
            m.observe(Observation {
                tcp: false,
                ipv6: false,
                qtype: "A",
                reply: Some(&nxdomain),
                plugin: Plugin::Kubernetes,
                took: Duration::from_millis(1),
            });
        }
        let text = m.render();
        assert!(
            text.contains(r#"coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="udp",family="1",type="A"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NXDOMAIN",plugin="kubernetes"} 2"#),
            "{text}"
        );
        assert!(text.contains("coredns_dns_request_duration_seconds_count{"));
        assert!(text.contains("coredns_build_info{"));
    }
}
