//! k8rs-demo: the small HTTP app of the `docker.io/k8rs/demo` image.
//!
//! `GET /demo/hello` answers `hello, world!`, `GET /healthz` answers `ok` (for probes),
//! everything else 404. One thread per connection, one request per connection
//! (`Connection: close`): enough for a demo and for tests, and no async runtime.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The port used when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8080;

/// Longest request head (request line and headers) read before answering 431.
const MAX_HEAD: usize = 16 * 1024;

/// A response: status code, reason phrase, body (always text/plain).
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub body: &'static str,
}

const fn response(status: u16, reason: &'static str, body: &'static str) -> Response {
    Response {
        status,
        reason,
        body,
    }
}

/// The app's routes. `HEAD` is answered like `GET` (the body is left off when sent);
/// other methods on a known path are 405. The query string plays no part.
pub fn route(method: &str, target: &str) -> Response {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let body = match path {
        "/demo/hello" => "hello, world!\n",
        "/healthz" => "ok\n",
        _ => return response(404, "Not Found", "404 page not found\n"),
    };
    match method {
        "GET" | "HEAD" => response(200, "OK", body),
        _ => response(405, "Method Not Allowed", "method not allowed\n"),
    }
}

/// The port from the `PORT` environment value, if set.
pub fn port_from_env(value: Option<&str>) -> Result<u16, String> {
    match value {
        None => Ok(DEFAULT_PORT),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("invalid PORT {v:?}: want a number 0-65535")),
    }
}

/// Accepts connections until the listener fails, answering each on its own thread.
pub fn serve(listener: TcpListener) -> std::io::Result<()> {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                std::thread::spawn(move || {
                    let _ = handle(stream);
                });
            }
            // A connection reset before accept() returns is the client's business.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one request head, logs its request line to stdout and answers it.
pub fn handle(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "-".into());
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let request_line = request_line.trim_end().to_string();
    if request_line.is_empty() {
        return Ok(()); // closed without a request (a TCP probe)
    }
    // Skip the headers: nothing here depends on them.
    let mut head = request_line.len();
    let mut too_large = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        head += line.len();
        if head > MAX_HEAD {
            too_large = true;
            break;
        }
    }
    let mut parts = request_line.split_ascii_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let resp = if too_large {
        response(
            431,
            "Request Header Fields Too Large",
            "request head too large\n",
        )
    } else if target.is_empty() || parts.next().is_none_or(|v| !v.starts_with("HTTP/")) {
        response(400, "Bad Request", "bad request\n")
    } else {
        route(method, target)
    };
    println!("{peer} \"{request_line}\" {}", resp.status);
    let body = if method == "HEAD" { "" } else { resp.body };
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        resp.status,
        resp.reason,
        resp.body.len(),
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/demo/hello").status, 200);
        assert_eq!(route("GET", "/demo/hello").body, "hello, world!\n");
        assert_eq!(route("GET", "/demo/hello?x=1").body, "hello, world!\n");
        assert_eq!(route("HEAD", "/demo/hello").status, 200);
        assert_eq!(route("GET", "/healthz").body, "ok\n");
        assert_eq!(route("GET", "/").status, 404);
        assert_eq!(route("GET", "/demo/hello/").status, 404);
        assert_eq!(route("GET", "/demo").status, 404);
        assert_eq!(route("POST", "/demo/hello").status, 405);
        assert_eq!(route("POST", "/nothing").status, 404);
    }

    #[test]
    fn port_parsing() {
        assert_eq!(port_from_env(None), Ok(8080));
        assert_eq!(port_from_env(Some("9000")), Ok(9000));
        assert_eq!(
            port_from_env(Some("http")),
            Err("invalid PORT \"http\": want a number 0-65535".into())
        );
    }

    /// A real listener on a free loopback port, spoken to over TCP.
    fn get(raw: &str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener));
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        conn.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_over_tcp() {
        let hello = get("GET /demo/hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(hello.starts_with("HTTP/1.1 200 OK\r\n"), "{hello}");
        assert!(hello.contains("Content-Length: 14\r\n"), "{hello}");
        assert!(hello.ends_with("\r\n\r\nhello, world!\n"), "{hello}");

        let missing = get("GET /nope HTTP/1.0\r\n\r\n");
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );

        let head = get("HEAD /healthz HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head}");

        let bad = get("hello\r\n\r\n");
        assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{bad}");
    }
}
