//! DNS over UDP and TCP: decodes a question, answers it from the [`Zone`] or forwards
//! it upstream, encodes the reply.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::forward::Upstreams;
use crate::metrics::{Metrics, Observation, Plugin};
use crate::zone::{Answer, Data, Kind, Rr, TTL, Zone};

/// Answers questions: the current zone (None until the caches first synced) and the
/// upstream resolvers.
pub struct Handler {
    pub domain: String,
    pub zone: watch::Receiver<Option<Arc<Zone>>>,
    pub upstreams: Upstreams,
    pub metrics: Arc<Metrics>,
}

/// The largest UDP reply we send when the client offers EDNS (DNS flag day 2020).
const EDNS_PAYLOAD: u16 = 1232;

fn kind(t: RecordType) -> Kind {
    match t {
        RecordType::A => Kind::A,
        RecordType::AAAA => Kind::Aaaa,
        RecordType::CNAME => Kind::Cname,
        RecordType::SRV => Kind::Srv,
        RecordType::PTR => Kind::Ptr,
        RecordType::SOA => Kind::Soa,
        RecordType::NS => Kind::Ns,
        _ => Kind::Other,
    }
}

fn name(n: &str) -> Name {
    Name::from_ascii(format!("{n}.")).unwrap_or_else(|_| Name::root())
}

fn record(rr: &Rr) -> Record {
    let data = match &rr.data {
        Data::A(ip) => RData::A(A(*ip)),
        Data::Cname(t) => RData::CNAME(CNAME(name(t))),
        Data::Ptr(t) => RData::PTR(PTR(name(t))),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, name(target))),
    };
    Record::from_rdata(name(&rr.name), TTL, data)
}

/// The zone's SOA, as CoreDNS writes it (its negative answers' TTL is the minimum).
fn soa(zone: &str) -> Record {
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1);
    let data = SOA::new(
        name(&format!("ns.dns.{zone}")),
        name(&format!("hostmaster.{zone}")),
        serial,
        7200,
        1800,
        86400,
        TTL,
    );
    Record::from_rdata(name(zone), TTL, RData::SOA(data))
}

impl Handler {
    /// The reply to one request (`tcp`: it came over TCP, so it may be long); None
    /// for packets that are not requests. Counted in the metrics.
    pub async fn handle(&self, packet: &[u8], tcp: bool, ipv6: bool) -> Option<Vec<u8>> {
        let start = std::time::Instant::now();
        let req = Message::from_vec(packet).ok()?;
        if req.metadata.message_type != MessageType::Query {
            return None;
        }
        let (reply, plugin) = self.answer(&req, packet, tcp).await;
        let qtype = match req.queries.as_slice() {
            [q] => q.query_type.to_string(),
            _ => "other".to_string(),
        };
        self.metrics.observe(Observation {
            tcp,
            ipv6,
            qtype: &qtype,
            reply: reply.as_deref(),
            plugin,
            took: start.elapsed(),
        });
        reply
    }

    /// The reply to a request and which part of the server wrote it.
    async fn answer(&self, req: &Message, packet: &[u8], tcp: bool) -> (Option<Vec<u8>>, Plugin) {
        let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.metadata.checking_disabled = req.metadata.checking_disabled;
        resp.add_queries(req.queries.iter().cloned());
        if req.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD);
            resp.set_edns(edns);
        }
        let q = match (req.metadata.op_code, req.queries.as_slice()) {
            (OpCode::Query, [q]) => q.clone(),
            (OpCode::Query, _) => {
                resp.metadata.response_code = ResponseCode::FormErr;
                return (resp.to_vec().ok(), Plugin::None);
            }
            _ => {
                resp.metadata.response_code = ResponseCode::NotImp;
                return (resp.to_vec().ok(), Plugin::None);
            }
        };
        let qname = q.name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let qkind = kind(q.query_type);
        let current = self.zone.borrow().clone();
        let answer = match &current {
            Some(z) => z.answer(&qname, qkind),
            None => Zone::build(&self.domain, &[], &[]).answer(&qname, qkind),
        };
        match answer {
            Answer::Forward => {
                let reply = match self.upstreams.exchange(packet, tcp).await {
                    Some(reply) => Some(reply),
                    None => {
                        resp.metadata.response_code = ResponseCode::ServFail;
                        resp.to_vec().ok()
                    }
                };
                return (reply, Plugin::Forward);
            }
            // Until the caches are filled, our own names cannot be answered.
            _ if current.is_none() => resp.metadata.response_code = ResponseCode::ServFail,
            Answer::NxDomain { zone } => {
                resp.metadata.authoritative = true;
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.add_authority(soa(&zone));
            }
            Answer::Records {
                zone,
                answers,
                additionals,
            } => {
                resp.metadata.authoritative = true;
                if qkind == Kind::Soa && qname == zone {
                    resp.add_answer(soa(&zone));
                }
                resp.add_answers(answers.iter().map(record));
                resp.add_additionals(additionals.iter().map(record));
                // An ExternalName's target is resolved too, as CoreDNS does: from the
                // zone when it is a cluster name, else upstream.
                if let [
                    Rr {
                        data: Data::Cname(target),
                        ..
                    },
                ] = answers.as_slice()
                    && matches!(qkind, Kind::A | Kind::Aaaa)
                {
                    match current.as_ref().map(|z| z.answer(target, qkind)) {
                        Some(Answer::Records { answers, .. }) => {
                            resp.add_answers(answers.iter().map(record));
                        }
                        Some(Answer::NxDomain { .. }) => {}
                        _ => {
                            resp.add_answers(self.upstreams.lookup(target, q.query_type).await);
                        }
                    }
                }
                if resp.answers.is_empty() {
                    resp.add_authority(soa(&zone));
                }
            }
        }
        let Ok(bytes) = resp.to_vec() else {
            return (None, Plugin::Kubernetes);
        };
        if !tcp && bytes.len() > usize::from(req.max_payload().min(EDNS_PAYLOAD)) {
            return (resp.truncate().to_vec().ok(), Plugin::Kubernetes);
        }
        (Some(bytes), Plugin::Kubernetes)
    }
}

/// Binds UDP and TCP on the same address; port 0 picks one free for both.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// Serves until the sockets fail or the task is dropped.
pub async fn serve(udp: UdpSocket, tcp: TcpListener, handler: Arc<Handler>) {
    let udp = Arc::new(udp);
    let h = handler.clone();
    let tcp_task = tokio::spawn(async move {
        loop {
            match tcp.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_tcp(stream, h.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "DNS TCP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    let _stop_tcp = crate::AbortOnDrop(vec![tcp_task]);
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = match udp.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let packet = buf[..n].to_vec();
        let (udp, h) = (udp.clone(), handler.clone());
        tokio::spawn(async move {
            if let Some(reply) = h.handle(&packet, false, peer.is_ipv6()).await {
                let _ = udp.send_to(&reply, peer).await;
            }
        });
    }
}

/// One TCP connection: length-prefixed messages, answered in order.
async fn serve_tcp(mut stream: TcpStream, handler: Arc<Handler>) {
    let ipv6 = stream.peer_addr().is_ok_and(|a| a.is_ipv6());
    let idle = std::time::Duration::from_secs(10);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut packet).await.is_err() {
            return;
        }
        let Some(reply) = handler.handle(&packet, true, ipv6).await else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    /// A headless service with `n` endpoints.
    fn handler(n: u8) -> Handler {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "big", "namespace": "default"},
            "spec": {"clusterIP": "None"}
        }))
        .unwrap();
        let endpoints: Vec<_> = (1..=n)
            .map(|i| json!({"addresses": [format!("10.42.1.{i}")]}))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "big-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "big"}},
            "addressType": "IPv4",
            "endpoints": endpoints
        }))
        .unwrap();
        let zone = Zone::build("cluster.local", &[&svc], &[&slice]);
        let (_tx, rx) = watch::channel(Some(Arc::new(zone)));
        Handler {
            domain: "cluster.local".into(),
            zone: rx,
            upstreams: Upstreams::default(),
            metrics: Arc::new(Metrics::new("127.0.0.1:53".parse().unwrap())),
        }
    }

    fn query(name: &str, edns: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(4096);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[tokio::test]
    async fn long_udp_answers_are_truncated_tcp_ones_not() {
        let h = handler(60);
        let q = query("big.default.svc.cluster.local.", false);
        let udp = Message::from_vec(&h.handle(&q, false, false).await.unwrap()).unwrap();
        assert!(udp.metadata.truncation);
        assert!(udp.answers.is_empty());
        let tcp = Message::from_vec(&h.handle(&q, true, false).await.unwrap()).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 60);
        // With EDNS the client takes up to 1232 bytes: 60 answers fit.
        let q = query("big.default.svc.cluster.local.", true);
        let udp = Message::from_vec(&h.handle(&q, false, false).await.unwrap()).unwrap();
        assert!(!udp.metadata.truncation);
        assert_eq!(udp.answers.len(), 60);
    }

    #[tokio::test]
    async fn no_upstream_is_servfail() {
        let h = handler(1);
        let q = query("example.com.", false);
        let m = Message::from_vec(&h.handle(&q, false, false).await.unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
}
