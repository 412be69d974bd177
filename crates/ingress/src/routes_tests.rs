//! The examples of upstream's Ingress documentation ("Examples" of path matching, and
//! "Hostname wildcards"), plus precedence between hosts and Ingresses.

use super::*;

fn router(rules: &[(Option<&str>, &str, PathType, &'static str)]) -> Router<&'static str> {
    let mut r = Router::default();
    for (host, path, kind, target) in rules {
        r.add(*host, path, *kind, *target);
    }
    r.finish();
    r
}

use PathType::{Exact, Prefix};

/// Whether a router of `paths` (all of `kind`) sends `request` to any of them.
fn matches(kind: PathType, paths: &[&str], request: &str) -> Option<String> {
    let mut r = Router::default();
    for p in paths {
        r.add(None, p, kind, p.to_string());
    }
    r.finish();
    r.route("example.com", request).cloned()
}

#[test]
fn upstream_path_matching_examples() {
    let yes = |kind, paths: &[&str], request, want: &str| {
        assert_eq!(
            matches(kind, paths, request).as_deref(),
            Some(want),
            "{kind:?} {paths:?} {request}"
        );
    };
    let no = |kind, paths: &[&str], request| {
        assert_eq!(
            matches(kind, paths, request),
            None,
            "{kind:?} {paths:?} {request}"
        );
    };
    yes(Prefix, &["/"], "/anything/at/all", "/");
    yes(Exact, &["/foo"], "/foo", "/foo");
    no(Exact, &["/foo"], "/bar");
    no(Exact, &["/foo"], "/foo/");
    no(Exact, &["/foo/"], "/foo");
    yes(Prefix, &["/foo"], "/foo", "/foo");
    yes(Prefix, &["/foo"], "/foo/", "/foo");
    yes(Prefix, &["/foo/"], "/foo", "/foo/");
    yes(Prefix, &["/foo/"], "/foo/", "/foo/");
    no(Prefix, &["/aaa/bb"], "/aaa/bbb");
    yes(Prefix, &["/aaa/bbb"], "/aaa/bbb", "/aaa/bbb");
    yes(Prefix, &["/aaa/bbb/"], "/aaa/bbb", "/aaa/bbb/");
    yes(Prefix, &["/aaa/bbb"], "/aaa/bbb/", "/aaa/bbb");
    yes(Prefix, &["/aaa/bbb"], "/aaa/bbb/ccc", "/aaa/bbb");
    no(Prefix, &["/aaa/bbb"], "/aaa/bbbxyz");
    yes(Prefix, &["/", "/aaa"], "/aaa/ccc", "/aaa");
    yes(Prefix, &["/", "/aaa", "/aaa/bbb"], "/aaa/bbb", "/aaa/bbb");
    yes(Prefix, &["/", "/aaa", "/aaa/bbb"], "/ccc", "/");
    no(Prefix, &["/aaa"], "/ccc");
}

#[test]
fn exact_beats_prefix_of_the_same_path_and_longest_wins() {
    let r = router(&[
        (None, "/foo", Prefix, "prefix"),
        (None, "/foo", Exact, "exact"),
        (None, "/foo/bar", Prefix, "longer"),
    ]);
    assert_eq!(r.route("h", "/foo"), Some(&"exact"));
    assert_eq!(r.route("h", "/foo/"), Some(&"prefix"));
    assert_eq!(r.route("h", "/foo/bar/baz"), Some(&"longer"));
    // Added in another order, the same answers.
    let r = router(&[
        (None, "/foo/bar", Prefix, "longer"),
        (None, "/foo", Exact, "exact"),
        (None, "/foo", Prefix, "prefix"),
    ]);
    assert_eq!(r.route("h", "/foo"), Some(&"exact"));
    assert_eq!(r.route("h", "/foo/x"), Some(&"prefix"));
}

#[test]
fn the_first_added_of_equal_rules_wins() {
    let r = router(&[
        (None, "/a", Prefix, "older"),
        (None, "/a/", Prefix, "newer"),
    ]);
    assert_eq!(r.route("h", "/a/b"), Some(&"older"));
}

#[test]
fn implementation_specific_is_a_prefix_and_bad_paths_are_ignored() {
    assert_eq!(PathType::parse(Some("ImplementationSpecific")), Prefix);
    assert_eq!(PathType::parse(Some("Prefix")), Prefix);
    assert_eq!(PathType::parse(Some("Exact")), Exact);
    let r = router(&[(None, "", Prefix, "root")]);
    assert_eq!(r.route("h", "/x"), Some(&"root"));
    let r = router(&[(None, "relative", Prefix, "bad"), (None, "x", Exact, "bad")]);
    assert_eq!(r.route("h", "relative"), None);
    assert_eq!(r.route("h", "x"), None);
}

#[test]
fn upstream_hostname_wildcard_examples() {
    let r = router(&[(Some("*.foo.com"), "/", Prefix, "wild")]);
    assert_eq!(r.route("bar.foo.com", "/"), Some(&"wild"));
    assert_eq!(r.route("baz.bar.foo.com", "/"), None);
    assert_eq!(r.route("foo.com", "/"), None);
    assert_eq!(r.route(".foo.com", "/"), None);
    assert!(host_matches("*.foo.com", "bar.foo.com"));
    assert!(!host_matches("*.foo.com", "baz.bar.foo.com"));
    assert!(!host_matches("*.foo.com", "foo.com"));
    assert!(host_matches("foo.com", "FOO.com"));
}

#[test]
fn hosts_are_tried_exact_then_wildcard_then_any_then_default() {
    let mut r = router(&[
        (None, "/", Prefix, "any"),
        (Some("*.example.com"), "/", Prefix, "wild"),
        (Some("a.example.com"), "/api", Prefix, "exact"),
    ]);
    r.set_default("default");
    r.set_default("second default");
    assert_eq!(r.route("a.example.com", "/api/v1"), Some(&"exact"));
    // a.example.com has no rule for /other: the wildcard's `/` answers.
    assert_eq!(r.route("a.example.com", "/other"), Some(&"wild"));
    assert_eq!(r.route("b.example.com", "/api"), Some(&"wild"));
    assert_eq!(r.route("elsewhere.org", "/api"), Some(&"any"));
    let r2 = {
        let mut r = router(&[(Some("a.example.com"), "/api", Exact, "exact")]);
        r.set_default("default");
        r
    };
    assert_eq!(r2.route("a.example.com", "/api/"), Some(&"default"));
    assert_eq!(r2.route("b.example.com", "/api"), Some(&"default"));
}

#[test]
fn host_headers_are_normalized() {
    assert_eq!(normalize_host("Foo.Example.COM:8080"), "foo.example.com");
    assert_eq!(normalize_host("foo.example.com."), "foo.example.com");
    assert_eq!(normalize_host("10.0.0.1:80"), "10.0.0.1");
    assert_eq!(normalize_host("[::1]:8443"), "[::1]");
    assert_eq!(normalize_host("[::1]"), "[::1]");
    let r = router(&[(Some("Foo.Example.com"), "/", Prefix, "foo")]);
    assert_eq!(r.route("foo.example.com:30080", "/x"), Some(&"foo"));
}
