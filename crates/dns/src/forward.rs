//! Forwarding to the host's resolvers (CoreDNS's `forward . /etc/resolv.conf`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one upstream gets to answer before the next is tried.
const TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Default)]
pub struct Upstreams {
    pub servers: Vec<SocketAddr>,
}

/// The `nameserver` lines of a resolv.conf.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        // `fe80::1%eth0` scope suffixes are not supported.
        .filter_map(|w| w.parse().ok())
        .collect()
}

impl Upstreams {
    /// The resolvers of `path` on port 53, less those that would be ourselves
    /// (listening on `listen`): forwarding to ourselves would loop.
    pub fn from_resolv_conf(path: &Path, listen: SocketAddr) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let servers = parse_resolv_conf(&text)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .filter(|s| {
                let ours = s.port() == listen.port()
                    && (s.ip() == listen.ip()
                        || listen.ip().is_unspecified()
                            && s.ip().is_loopback()
                            && s.is_ipv4() == listen.is_ipv4());
                if ours {
                    tracing::warn!(upstream = %s, "skipping an upstream resolver that is this DNS server");
                }
                !ours
            })
            .collect();
        Upstreams { servers }
    }

    /// The reply of the first upstream that answers `query` (over UDP, and over TCP
    /// when `tcp` and the UDP reply was truncated).
    pub async fn exchange(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        for server in &self.servers {
            match tokio::time::timeout(TIMEOUT, udp_exchange(*server, query)).await {
                Ok(Ok(reply)) => {
                    let truncated = reply.get(2).is_some_and(|b| b & 0x02 != 0);
                    if tcp && truncated {
                        match tokio::time::timeout(TIMEOUT, tcp_exchange(*server, query)).await {
                            Ok(Ok(full)) => return Some(full),
                            _ => return Some(reply),
                        }
                    }
                    return Some(reply);
                }
                Ok(Err(e)) => tracing::debug!(upstream = %server, error = %e, "upstream failed"),
                Err(_) => tracing::debug!(upstream = %server, "upstream timed out"),
            }
        }
        None
    }

    /// The answers upstream has for `name` (ExternalName targets).
    pub async fn lookup(&self, name: &str, kind: RecordType) -> Vec<Record> {
        let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
            return Vec::new();
        };
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(qname, kind));
        let Ok(bytes) = msg.to_vec() else {
            return Vec::new();
        };
        self.exchange(&bytes, true)
            .await
            .and_then(|r| Message::from_vec(&r).ok())
            .map(|m| m.answers)
            .unwrap_or_default()
    }
}

async fn udp_exchange(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(server).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Only the reply to our question (same ID) counts.
        if n >= 12 && buf[..2] == query[..2] {
            return Ok(buf[..n].to_vec());
        }
    }
}

async fn tcp_exchange(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server).await?;
    let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(query);
    stream.write_all(&out).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_without_ourselves() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver 127.0.0.53\noptions ndots:2\nnameserver ::1\nnameserver bogus\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "127.0.0.53".parse().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        let dir = std::env::temp_dir().join(format!("k8rs-dns-resolv-{}", std::process::id()));
        std::fs::write(&dir, text).unwrap();
        // Listening on port 53 of every IPv4 address: 127.0.0.53 is us.
        let u = Upstreams::from_resolv_conf(&dir, "0.0.0.0:53".parse().unwrap());
        assert_eq!(
            u.servers,
            vec!["10.0.0.2:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        // On another port they are not.
        let u = Upstreams::from_resolv_conf(&dir, "0.0.0.0:10053".parse().unwrap());
        assert_eq!(u.servers.len(), 3);
        std::fs::remove_file(&dir).unwrap();
    }
}
