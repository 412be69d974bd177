//! Upstream's URL library: `url()`, `isURL()` and the accessors of a
//! `kubernetes.URL`. Parsing follows Go's `net/url` (which upstream uses), not
//! the WHATWG rules of the `url` crate: the string must be an absolute URI or an
//! absolute path (`url.ParseRequestURI`), nothing is normalised, and
//! `url('https://example.com').getEscapedPath()` is `''`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::STRING_TYPE;
use cel::objects::{Key, Map};
use cel::{Env, Value};

use super::{Args, Ret, arg, boolean, custom, fail, library_type, owned, str_arg, string};

#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Url {
    scheme: String,
    /// `host[:port]`, IPv6 literals in brackets.
    host: String,
    /// The path as written (still escaped).
    raw_path: String,
    raw_query: String,
}

library_type!(Url, URL, "kubernetes.URL");

/// Go's `url.Parse` (`request`: `url.ParseRequestURI`); the error is Go's reason.
pub(super) fn parse(s: &str, request: bool) -> Result<Url, String> {
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let s = if request {
        s
    } else {
        s.split('#').next().unwrap_or_default()
    };
    if s.is_empty() && request {
        return Err("empty url".into());
    }
    let mut url = Url::default();
    if s == "*" {
        url.raw_path = "*".into();
        return Ok(url);
    }
    let (scheme, rest) = scheme(s)?;
    url.scheme = scheme.to_ascii_lowercase();
    let (mut rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    url.raw_query = query.into();
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // An opaque URL (`mailto:a@b`): no host and no path.
            return Ok(url);
        }
        if request {
            return Err("invalid URI for request".into());
        }
    }
    if (!url.scheme.is_empty() || !request && !rest.starts_with("///")) && rest.starts_with("//") {
        let after = &rest[2..];
        let end = after.find('/').unwrap_or(after.len());
        url.host = authority(&after[..end])?;
        rest = &after[end..];
    }
    unescape(rest)?;
    url.raw_path = rest.into();
    Ok(url)
}

fn scheme(s: &str) -> Result<(&str, &str), String> {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok((&s[..i], &s[i + 1..])),
            _ => break,
        }
    }
    Ok(("", s))
}

/// The host of `[userinfo@]host[:port]`, checked as Go checks it.
fn authority(a: &str) -> Result<String, String> {
    let host = match a.rfind('@') {
        Some(i) => {
            let user = &a[..i];
            let ok = user.chars().all(|c| {
                c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c) || !c.is_ascii()
            });
            if !ok {
                return Err("net/url: invalid userinfo".into());
            }
            &a[i + 1..]
        }
        None => a,
    };
    let port_at = if host.starts_with('[') {
        let close = host.find(']').ok_or("missing ']' in host")?;
        Some(close + 1)
    } else {
        host.rfind(':')
    };
    if let Some(i) = port_at {
        let port = &host[i..];
        let valid = port.is_empty()
            || port.starts_with(':') && port[1..].chars().all(|c| c.is_ascii_digit());
        if !valid {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    if let Some(c) = host.chars().find(|&c| {
        c.is_ascii() && !(c.is_ascii_alphanumeric() || "-_.~!$&'()*+,;=:[]<>\"%".contains(c))
    }) {
        return Err(format!(
            "invalid character {:?} in host name",
            c.to_string()
        ));
    }
    unescape(host)
}

/// Go's `unescape`: `%XX` decoded, a malformed escape refused.
fn unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => out.push(b),
                None => {
                    let bad = &s[i..(i + 3).min(s.len())];
                    return Err(format!("invalid URL escape {bad:?}"));
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `QueryUnescape`: also `+` as a space.
fn query_unescape(s: &str) -> Option<String> {
    unescape(&s.replace('+', " ")).ok()
}

/// Go's `EscapedPath`: the path as written when it is validly escaped, else
/// the decoded path escaped again.
fn escaped_path(raw: &str) -> String {
    let fine = |c: char| c.is_ascii_alphanumeric() || "-_.~$&+,/:;=@".contains(c);
    if raw.chars().all(|c| fine(c) || "!'()*[]%".contains(c)) {
        return raw.to_string();
    }
    let decoded = unescape(raw).unwrap_or_default();
    let mut out = String::new();
    for c in decoded.chars() {
        if fine(c) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Go's `splitHostPort`: the host without brackets, and the port.
fn host_port(host: &str) -> (&str, &str) {
    let (h, p) = match host.rfind(':') {
        Some(i)
            if host[i + 1..].chars().all(|c| c.is_ascii_digit()) && !host[i..].contains(']') =>
        {
            (&host[..i], &host[i + 1..])
        }
        _ => (host, ""),
    };
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    (h, p)
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(Url::TYPE)?;
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], to_url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    env.add_member_overload("getScheme", "url_get_scheme", Url::TYPE, vec![], get_scheme)?;
    env.add_member_overload("getHost", "url_get_host", Url::TYPE, vec![], get_host)?;
    env.add_member_overload(
        "getHostname",
        "url_get_hostname",
        Url::TYPE,
        vec![],
        get_hostname,
    )?;
    env.add_member_overload("getPort", "url_get_port", Url::TYPE, vec![], get_port)?;
    env.add_member_overload(
        "getEscapedPath",
        "url_get_escaped_path",
        Url::TYPE,
        vec![],
        get_path,
    )?;
    env.add_member_overload("getQuery", "url_get_query", Url::TYPE, vec![], get_query)?;
    Ok(())
}

fn to_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg(&args, 0)?;
    let error = |e: String| {
        fail(format!(
            "URL parse error during conversion from string: parse {s:?}: {e}"
        ))
    };
    parse(&s, true).map_err(error)?;
    custom(parse(&s, false).map_err(error)?)
}

fn is_url<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(parse(&str_arg(&args, 0)?, true).is_ok())
}

fn get_scheme<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(arg::<Url>(&args, 0)?.scheme.clone())
}

fn get_host<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(arg::<Url>(&args, 0)?.host.clone())
}

fn get_hostname<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(host_port(&arg::<Url>(&args, 0)?.host).0)
}

fn get_port<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(host_port(&arg::<Url>(&args, 0)?.host).1)
}

fn get_path<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(escaped_path(&arg::<Url>(&args, 0)?.raw_path))
}

/// Go's `ParseQuery`, errors skipped as `URL.Query` skips them.
fn get_query<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let mut out: HashMap<Key, Vec<Value>> = HashMap::new();
    for pair in arg::<Url>(&args, 0)?.raw_query.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (query_unescape(k), query_unescape(v)) else {
            continue;
        };
        out.entry(Key::String(Arc::new(k)))
            .or_default()
            .push(Value::String(Arc::new(v)));
    }
    let map = out
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    owned(Value::Map(Map { map: Arc::new(map) }))
}

#[cfg(test)]
mod tests {
    use super::super::{eval_err, yes};

    #[test]
    fn accepts_absolute_uris_and_paths_only() {
        yes("isURL('https://user:pass@example.com:80/path?query=val#fragment')");
        yes("isURL('/absolute-path') && !isURL('https://a:b:c/') && !isURL('../relative-path')");
        yes("!isURL('') && isURL('mailto:a@b') && !isURL('http://a/%zz')");
        assert_eq!(
            eval_err("url('../relative-path')"),
            r#"URL parse error during conversion from string: parse "../relative-path": invalid URI for request"#
        );
        assert_eq!(
            eval_err("url('https://a:b:c/')"),
            r#"URL parse error during conversion from string: parse "https://a:b:c/": invalid port ":c" after host"#
        );
    }

    #[test]
    fn components_as_upstream_returns_them() {
        yes("url('/path').getScheme() == '' && url('https://example.com/').getScheme() == 'https'");
        yes("url('https://example.com:80/').getHost() == 'example.com:80'");
        yes(
            "url('https://[::1]:80/').getHost() == '[::1]:80' && url('https://[::1]/').getHost() == '[::1]'",
        );
        yes("url('/path').getHost() == '' && url('https://[::1]:80/').getHostname() == '::1'");
        yes("url('https://127.0.0.1:80/').getHostname() == '127.0.0.1'");
        yes(
            "url('https://example.com:80/').getPort() == '80' && url('https://example.com/').getPort() == ''",
        );
        yes("url('https://example.com/path').getEscapedPath() == '/path'");
        yes(
            "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
        );
        yes("url('https://example.com').getEscapedPath() == ''");
        yes(
            "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
        );
        yes(
            "url('https://example.com/path?key with spaces=value with spaces').getQuery() == {'key with spaces': ['value with spaces']}",
        );
        yes(
            "url('https://example.com/path?').getQuery() == {} && url('https://example.com/p#f?x=1').getQuery() == {}",
        );
    }
}
