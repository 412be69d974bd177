//! `/containerLogs/{namespace}/{pod}/{container}`: the container's CRI log file
//! (`<timestamp> <stream> <F|P> <text>` per line) as plain text, with upstream's
//! options: follow, previous, tailLines, sinceSeconds, sinceTime, timestamps,
//! limitBytes.

use std::io::SeekFrom;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use bytes::Bytes;
use cri::v1::ContainerState;
use http::{Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::lookup::{self, NotFound};
use super::text;
use crate::Runtime;

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Default, PartialEq)]
struct LogOptions {
    follow: bool,
    previous: bool,
    tail_lines: Option<usize>,
    since: Option<jiff::Timestamp>,
    timestamps: bool,
    limit_bytes: Option<usize>,
}

fn parse_options(query: Option<&str>) -> Result<LogOptions, String> {
    let mut o = LogOptions::default();
    let truthy = |v: &str| matches!(v, "1" | "true" | "True" | "TRUE");
    let number = |k: &str, v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("invalid value {v:?} for {k}"))
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "follow" => o.follow = truthy(&v),
            "previous" => o.previous = truthy(&v),
            "timestamps" => o.timestamps = truthy(&v),
            "tailLines" => o.tail_lines = Some(number(&k, &v)?.max(0) as usize),
            "limitBytes" => o.limit_bytes = Some(number(&k, &v)?.max(1) as usize),
            "sinceSeconds" => {
                let secs = number(&k, &v)?.max(1);
                let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs);
                o.since = Some(o.since.map_or(since, |s| s.max(since)));
            }
            "sinceTime" => {
                let t: jiff::Timestamp = v
                    .parse()
                    .map_err(|_| format!("invalid value {v:?} for sinceTime"))?;
                o.since = Some(o.since.map_or(t, |s| s.max(t)));
            }
            _ => {}
        }
    }
    Ok(o)
}

/// One parsed CRI log line.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    timestamp: &'a str,
    partial: bool,
    text: &'a [u8],
}

fn parse_line(line: &[u8]) -> Option<Line<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let _stream = parts.next()?;
    let tag = parts.next()?;
    Some(Line {
        timestamp,
        partial: tag.first() == Some(&b'P'),
        text: parts.next().unwrap_or_default(),
    })
}

/// Renders complete log lines (each without its newline) per the options.
fn render<'a>(lines: impl Iterator<Item = &'a [u8]>, o: &LogOptions) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines.filter_map(parse_line) {
        if let Some(since) = o.since {
            match line.timestamp.parse::<jiff::Timestamp>() {
                Ok(t) if t < since => continue,
                _ => {}
            }
        }
        if o.timestamps {
            out.extend_from_slice(line.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.text);
        if !line.partial {
            out.push(b'\n');
        }
    }
    out
}

pub async fn container_logs(
    State(rt): State<Arc<Runtime>>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response<Body> {
    let o = match parse_options(query.as_deref()) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let found = match lookup::containers(rt.runtime.as_ref(), &ns, &pod, &container).await {
        Ok(f) => f,
        Err(NotFound::Runtime(m)) => return text(StatusCode::INTERNAL_SERVER_ERROR, m),
        Err(e) => return text(StatusCode::NOT_FOUND, e.to_string()),
    };
    let chosen = if o.previous {
        found.get(1)
    } else {
        found.first()
    };
    let Some(chosen) = chosen else {
        let m = format!("previous terminated container \"{container}\" in pod \"{pod}\" not found");
        return text(StatusCode::BAD_REQUEST, m);
    };
    let status = match rt.runtime.container_status(&chosen.id).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let path = std::path::PathBuf::from(&status.log_path);
    let content = match tokio::fs::read(&path).await {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            let m = format!("cannot read log file {}: {e}", path.display());
            return text(StatusCode::INTERNAL_SERVER_ERROR, m);
        }
    };
    let (complete, rest) = split_complete(&content);
    let lines: Vec<&[u8]> = complete.split(|b| *b == b'\n').collect();
    let skip = o.tail_lines.map_or(0, |n| lines.len().saturating_sub(n));
    let first = render(lines[skip..].iter().copied(), &o);
    let running = status.state == ContainerState::ContainerRunning as i32;
    let body = if o.follow && running {
        let follower = Follower {
            rt: rt.clone(),
            id: chosen.id.clone(),
            path,
            offset: (content.len() - rest.len()) as u64,
            pending: Vec::new(),
            options: o,
            sent: 0,
        };
        follower.body(first)
    } else {
        Body::from(limit(first, o.limit_bytes))
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("valid response parts")
}

/// Splits off a trailing line the runtime has not finished writing.
fn split_complete(content: &[u8]) -> (&[u8], &[u8]) {
    match content.iter().rposition(|b| *b == b'\n') {
        Some(i) => (&content[..i], &content[i + 1..]),
        None => (&[], content),
    }
}

fn limit(mut out: Vec<u8>, limit: Option<usize>) -> Vec<u8> {
    if let Some(n) = limit {
        out.truncate(n);
    }
    out
}

/// Streams lines appended to a running container's log until it stops.
struct Follower {
    rt: Arc<Runtime>,
    id: String,
    path: std::path::PathBuf,
    offset: u64,
    pending: Vec<u8>,
    options: LogOptions,
    sent: usize,
}

impl Follower {
    fn body(self, first: Vec<u8>) -> Body {
        let first =
            futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) });
        let rest = futures::stream::unfold(self, |mut f| async move {
            let chunk = f.next_chunk().await?;
            Some((Ok(Bytes::from(chunk)), f))
        });
        Body::from_stream(futures::StreamExt::chain(first, rest))
    }

    /// The next rendered lines; `None` once the container stopped and all is sent.
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.options.limit_bytes.is_some_and(|n| self.sent >= n) {
                return None;
            }
            let stopped = !self.running().await;
            let new = self.read_new().await;
            let (complete, rest) = split_complete(&new);
            if new.contains(&b'\n') {
                let mut out = render(complete.split(|b| *b == b'\n'), &self.options);
                self.pending = rest.to_vec();
                if let Some(n) = self.options.limit_bytes {
                    out.truncate(n - self.sent);
                }
                self.sent += out.len();
                return Some(out);
            }
            self.pending = new;
            if stopped {
                return None;
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }

    /// Pending bytes plus whatever was appended since the last read.
    async fn read_new(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.pending);
        if let Ok(mut file) = tokio::fs::File::open(&self.path).await
            && file.seek(SeekFrom::Start(self.offset)).await.is_ok()
        {
            let before = buf.len();
            if file.read_to_end(&mut buf).await.is_ok() {
                self.offset += (buf.len() - before) as u64;
            }
        }
        buf
    }

    async fn running(&self) -> bool {
        match self.rt.runtime.container_status(&self.id).await {
            Ok(s) => s.state == ContainerState::ContainerRunning as i32,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-12-02T01:00:00.000000001Z stdout F one\n\
2026-12-02T01:00:01Z stderr P two-\n\
2026-12-02T01:00:01.5Z stderr F part\n\
2026-12-02T01:00:02Z stdout F three\n";

    fn lines() -> Vec<&'static [u8]> {
        split_complete(LOG).0.split(|b| *b == b'\n').collect()
    }

    #[test]
    fn renders_full_and_partial_lines() {
        let out = render(lines().into_iter(), &LogOptions::default());
        assert_eq!(out, b"one\ntwo-part\nthree\n");
    }

    #[test]
    fn timestamps_and_since_filter() {
        let o = parse_options(Some("timestamps=true&sinceTime=2026-12-02T01:00:01.2Z")).unwrap();
        let out = render(lines().into_iter(), &o);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-02T01:00:01.5Z part\n2026-12-02T01:00:02Z three\n"
        );
    }

    #[test]
    fn options_parse_and_reject_garbage() {
        let o = parse_options(Some("follow=true&previous=1&tailLines=2&limitBytes=10")).unwrap();
        assert!(o.follow && o.previous);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(2), Some(10)));
        let e = parse_options(Some("tailLines=x")).unwrap_err();
        assert!(e.contains("tailLines"), "{e}");
    }

    #[test]
    fn unfinished_line_is_held_back() {
        let (done, rest) = split_complete(b"a F x\nb F y");
        assert_eq!((done, rest), (&b"a F x"[..], &b"b F y"[..]));
    }
}
