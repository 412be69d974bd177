//! The API server's TLS configuration against real clients: curl (OpenSSL) and our
//! own rustls client config. A certificate signed by the cluster CA names its user;
//! no certificate still connects; a foreign certificate is refused.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;

use pki::{CertAndKey, CertificateAuthority, ClusterPki, LeafSpec, ServerPkiOptions};
use rustls_pki_types::ServerName;
use support::{Seen, TIMEOUT, run, serve};

fn write(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

fn cluster(dir: &std::path::Path) -> ClusterPki {
    ClusterPki::ensure(
        &dir.join("server/tls"),
        &ServerPkiOptions {
            dns_names: vec!["test-node".into()],
            ips: vec!["10.43.0.1".parse().unwrap()],
        },
    )
    .expect("cluster PKI")
}

fn curl(
    dir: &std::path::Path,
    addr: SocketAddr,
    ca: &str,
    id: Option<&CertAndKey>,
) -> (bool, String, String) {
    let ca_path = dir.join("curl-ca.crt");
    write(&ca_path, ca);
    let mut cmd = Command::new("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--http1.1",
        "--max-time",
        "15",
        "--cacert",
    ])
    .arg(&ca_path);
    if let Some(id) = id {
        let (c, k) = (dir.join("curl-client.crt"), dir.join("curl-client.key"));
        write(&c, &id.cert_pem);
        write(&k, &id.key_pem);
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    // The serving certificate names 127.0.0.1 and localhost: check both.
    cmd.arg(format!("https://localhost:{}/who", addr.port()));
    run(&mut cmd)
}

fn next(rx: &std::sync::mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(TIMEOUT)
        .expect("the server saw the request")
}

#[test]
fn curl_with_and_without_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = cluster(dir.path());
    let config = pki::tls::server_config(&pki.serving, pki.client_ca_pem()).unwrap();
    let (addr, rx) = serve(config);

    let (ok, out, err) = curl(dir.path(), addr, &pki.ca.cert_pem, Some(&pki.admin));
    assert!(ok, "curl with the admin certificate: {err}");
    assert_eq!(out, "user=system:admin groups=system:masters");
    let seen = next(&rx);
    assert_eq!(
        seen.user,
        Some(("system:admin".into(), vec!["system:masters".into()]))
    );
    assert_eq!(seen.alpn.as_deref(), Some("http/1.1"));

    let (ok, out, err) = curl(dir.path(), addr, &pki.ca.cert_pem, None);
    assert!(ok, "curl without a certificate: {err}");
    assert_eq!(out, "anonymous");
    assert_eq!(next(&rx).user, None);

    let node = pki.issue_kubelet_client("node-7").unwrap();
    let (ok, out, _) = curl(dir.path(), addr, &pki.ca.cert_pem, Some(&node));
    assert!(ok);
    assert_eq!(out, "user=system:node:node-7 groups=system:nodes");
    next(&rx);

    // A client certificate from another CA fails the handshake.
    let stranger = CertificateAuthority::generate("stranger")
        .unwrap()
        .issue(&LeafSpec::client("system:admin", &["system:masters"]))
        .unwrap();
    let (ok, out, _) = curl(dir.path(), addr, &pki.ca.cert_pem, Some(&stranger));
    assert!(!ok, "a foreign client certificate was accepted: {out}");

    // And curl does not trust the server without our CA.
    let other_ca = CertificateAuthority::generate("other").unwrap();
    let (ok, _, _) = curl(dir.path(), addr, &other_ca.cert_pem, None);
    assert!(!ok, "curl trusted a server its CA did not sign");
}

fn rustls_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    host: &str,
) -> std::io::Result<(String, Option<Vec<u8>>)> {
    let name = ServerName::try_from(host.to_string()).expect("server name");
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    tls.read_to_string(&mut response)?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((body, tls.conn.alpn_protocol().map(<[u8]>::to_vec)))
}

#[test]
fn our_client_config_with_and_without_identity() {
    let dir = tempfile::tempdir().unwrap();
    let pki = cluster(dir.path());
    let (addr, rx) = serve(pki::tls::server_config(&pki.serving, pki.client_ca_pem()).unwrap());

    // A user in several groups, over the service IP name the pods use.
    let dev = pki
        .issue_client("jane", &["dev", "ops", "system:masters"])
        .unwrap();
    let mut with_h2 = (*pki::tls::client_config(&pki.ca.cert_pem, Some(&dev)).unwrap()).clone();
    with_h2.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let (body, alpn) = rustls_get(addr, Arc::new(with_h2), "10.43.0.1").unwrap();
    assert_eq!(body, "user=jane groups=dev,ops,system:masters");
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "the server prefers h2");
    next(&rx);

    let anonymous = pki::tls::client_config(&pki.ca.cert_pem, None).unwrap();
    let (body, alpn) = rustls_get(addr, anonymous, "kubernetes.default.svc").unwrap();
    assert_eq!(body, "anonymous");
    assert_eq!(alpn, None);
    next(&rx);

    // The kubelet-client identity of the API server.
    let apiserver =
        pki::tls::client_config(&pki.ca.cert_pem, Some(&pki.apiserver_kubelet_client)).unwrap();
    let (body, _) = rustls_get(addr, apiserver, "test-node").unwrap();
    assert_eq!(body, "user=system:apiserver groups=system:masters");
    next(&rx);

    // A name the certificate does not cover is refused by the client.
    let anonymous = pki::tls::client_config(&pki.ca.cert_pem, None).unwrap();
    assert!(rustls_get(addr, anonymous, "elsewhere.example").is_err());
}
