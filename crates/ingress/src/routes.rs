//! Matching a request's host and path to an Ingress backend, by the rules upstream's
//! Ingress API documents (pure data; the targets are generic so tests use strings).
//!
//! - Hosts: an exact host (`foo.example.com`), a wildcard of exactly one label
//!   (`*.example.com` matches `bar.example.com`, not `example.com` nor
//!   `baz.bar.example.com`), or none (every host). Exact hosts are tried first, then
//!   wildcards, then rules without a host; a host whose paths all miss falls through to
//!   the next group, and last to the default backend.
//! - Paths: `Exact` compares the whole path, case-sensitive; `Prefix` compares element
//!   by element (`/foo` matches `/foo`, `/foo/` and `/foo/bar`, never `/foobar`; a
//!   trailing slash in either is ignored); `ImplementationSpecific` is `Prefix` here.
//!   The longest path wins, and `Exact` wins over `Prefix` of the same length; among
//!   equals, the rule added first (the oldest Ingress) wins.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathType {
    Exact,
    Prefix,
}

impl PathType {
    /// The Ingress API's `pathType`; `ImplementationSpecific` (and a missing type,
    /// which validation refuses) are prefixes here.
    pub fn parse(path_type: Option<&str>) -> PathType {
        match path_type {
            Some("Exact") => PathType::Exact,
            _ => PathType::Prefix,
        }
    }
}

#[derive(Debug)]
struct Rule<T> {
    /// For prefixes, without the trailing slash (`/` becomes empty).
    path: String,
    kind: PathType,
    target: T,
}

impl<T> Rule<T> {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            PathType::Exact => path == self.path,
            PathType::Prefix => {
                self.path.is_empty()
                    || path
                        .strip_prefix(self.path.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
        }
    }
}

/// Every rule of the served Ingresses, grouped by host.
#[derive(Debug)]
pub struct Router<T> {
    exact: HashMap<String, Vec<Rule<T>>>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, Vec<Rule<T>>>,
    any: Vec<Rule<T>>,
    default: Option<T>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            any: Vec::new(),
            default: None,
        }
    }
}

impl<T> Router<T> {
    /// Adds a rule; `host` is `None` or empty for every host. Paths that do not start
    /// with `/` are ignored (validation refuses them), except an empty
    /// implementation-specific path, which is `/`.
    pub fn add(&mut self, host: Option<&str>, path: &str, kind: PathType, target: T) {
        let path = match (kind, path) {
            (PathType::Prefix, "") => "/",
            (_, p) if !p.starts_with('/') => return,
            (_, p) => p,
        };
        let path = match kind {
            PathType::Exact => path.to_string(),
            PathType::Prefix => path.trim_end_matches('/').to_string(),
        };
        let rule = Rule { path, kind, target };
        let host = host.unwrap_or_default().to_ascii_lowercase();
        let rules = if host.is_empty() {
            &mut self.any
        } else if let Some(domain) = host.strip_prefix("*.") {
            self.wildcard.entry(domain.to_string()).or_default()
        } else {
            self.exact.entry(host).or_default()
        };
        rules.push(rule);
    }

    /// Sets the backend for requests no rule matches; the first one set stays.
    pub fn set_default(&mut self, target: T) {
        self.default.get_or_insert(target);
    }

    /// Orders every host's rules by precedence; call once after the last `add`.
    pub fn finish(&mut self) {
        let all = self
            .exact
            .values_mut()
            .chain(self.wildcard.values_mut())
            .chain(std::iter::once(&mut self.any));
        for rules in all {
            // Stable: equal rules keep the order they were added in.
            rules.sort_by_key(|r| (std::cmp::Reverse(r.path.len()), r.kind != PathType::Exact));
        }
    }

    /// The target for a request to `host` (a Host header: any port is ignored) and
    /// `path`, or `None` (404).
    pub fn route(&self, host: &str, path: &str) -> Option<&T> {
        let host = normalize_host(host);
        fn first<'a, T>(rules: Option<&'a Vec<Rule<T>>>, path: &str) -> Option<&'a T> {
            rules.and_then(|rs| rs.iter().find(|r| r.matches(path)).map(|r| &r.target))
        }
        let wildcard = || match host.split_once('.') {
            Some((label, domain)) if !label.is_empty() => first(self.wildcard.get(domain), path),
            _ => None,
        };
        first(self.exact.get(&host), path)
            .or_else(wildcard)
            .or_else(|| first(Some(&self.any), path))
            .or(self.default.as_ref())
    }
}

/// A Host header without its port, lower case, without a trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a TLS host (exact or `*.` wildcard) covers `server_name`.
pub fn host_matches(pattern: &str, server_name: &str) -> bool {
    let name = normalize_host(server_name);
    match pattern.strip_prefix("*.") {
        Some(domain) => name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(domain)),
        None => pattern.eq_ignore_ascii_case(&name),
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
