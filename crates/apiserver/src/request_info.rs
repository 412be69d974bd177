//! What a request asks for, read off its method and path the way upstream's
//! `RequestInfoFactory` does: `/api/v1/namespaces/ns/pods/web/status` is verb `get`
//! (or `update` …) on `pods`, name `web`, subresource `status`, namespace `ns`.

use http::Method;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Path segments after the subresource (proxy paths).
    pub rest: Vec<String>,
}

/// A request's path read without copying: segments as they appear (percent-encoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathInfo<'a> {
    pub verb: &'static str,
    pub group: &'a str,
    pub version: &'a str,
    pub namespace: Option<&'a str>,
    pub resource: &'a str,
    pub name: Option<&'a str>,
    pub subresource: Option<&'a str>,
    pub rest: Vec<&'a str>,
}

/// Reads a request on `/api/...` or `/apis/...`. `None` when the path names a
/// discovery document rather than a resource (`/api`, `/apis/apps/v1`, …).
pub fn parse(method: &Method, path: &str, watch_param: bool) -> Option<RequestInfo> {
    let p = parse_path(method, path, watch_param)?;
    Some(RequestInfo {
        verb: p.verb.to_string(),
        group: p.group.to_string(),
        version: p.version.to_string(),
        namespace: p.namespace.map(decode),
        resource: decode(p.resource),
        name: p.name.map(decode),
        subresource: p.subresource.map(decode),
        rest: p.rest.into_iter().map(decode).collect(),
    })
}

/// [`parse`] without decoding or copying (for labels such as the metrics').
pub fn parse_path<'a>(method: &Method, path: &'a str, watch_param: bool) -> Option<PathInfo<'a>> {
    let mut segs = path.trim_matches('/').split('/');
    let (group, version) = match segs.next()? {
        "api" => ("", segs.next()?),
        "apis" => (segs.next()?, segs.next()?),
        _ => return None,
    };
    let mut rest: Vec<&str> = segs.collect();
    if rest.is_empty() {
        return None;
    }
    let mut info = PathInfo {
        group,
        version,
        ..Default::default()
    };

    // The deprecated `/watch/` path prefix means watch.
    let mut watch = watch_param;
    if rest.first() == Some(&"watch") {
        watch = true;
        rest.remove(0);
    }

    // namespaces/<ns>/<resource>/...: a namespaced request, unless it is the namespace
    // object itself (`namespaces/<ns>` or `namespaces/<ns>/status|finalize`).
    let names_namespace_itself =
        rest.len() == 2 || rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    if rest.first() == Some(&"namespaces") && rest.len() >= 2 && !names_namespace_itself {
        info.namespace = Some(rest[1]);
        rest.drain(..2);
    }
    let mut parts = rest.into_iter();
    info.resource = parts.next()?;
    info.name = parts.next();
    info.subresource = parts.next();
    info.rest = parts.collect();

    info.verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if info.name.is_none() => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if info.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    };
    Some(info)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m: Method, path: &str) -> RequestInfo {
        parse(&m, path, false).unwrap()
    }

    #[test]
    fn reads_paths_like_upstream() {
        let r = p(Method::GET, "/api/v1/namespaces/default/pods/web/log");
        assert_eq!(
            (
                r.verb.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("get", Some("default"), "pods", Some("web"), Some("log"))
        );
        let r = p(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = p(Method::PUT, "/api/v1/namespaces/x/finalize");
        assert_eq!(
            (r.verb.as_str(), r.subresource.as_deref()),
            ("update", Some("finalize"))
        );
        let r = p(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!(
            (r.verb.as_str(), r.group.as_str(), r.namespace),
            ("list", "apps", None)
        );
        let r = p(Method::GET, "/api/v1/watch/namespaces/default/pods");
        assert_eq!(
            (r.verb.as_str(), r.namespace.as_deref()),
            ("watch", Some("default"))
        );
        let r = p(Method::DELETE, "/api/v1/namespaces/default/configmaps");
        assert_eq!(r.verb, "deletecollection");
        let r = p(Method::GET, "/api/v1/namespaces/default/pods/web/proxy/a/b");
        assert_eq!(r.rest, ["a", "b"]);
        assert!(parse(&Method::GET, "/apis/apps/v1", false).is_none());
        assert!(parse(&Method::GET, "/api", false).is_none());
    }
}
