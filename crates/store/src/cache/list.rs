//! Pages of a list served from the cache's objects, with the backends' paging rules.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{KeyValue, ListOptions, ListResult, Revision};

/// The keys under `prefix` after `opts.continue_after`, at most `opts.limit` of them,
/// as the state at `revision`.
pub(super) fn page(
    objects: &BTreeMap<String, KeyValue>,
    revision: Revision,
    prefix: &str,
    opts: &ListOptions,
) -> ListResult {
    // A continue key before the prefix resumes nowhere inside it: start at the prefix.
    let start = match &opts.continue_after {
        Some(after) if after.as_str() >= prefix => Bound::Excluded(after.as_str()),
        _ => Bound::Included(prefix),
    };
    let mut under = objects
        .range::<str, _>((start, Bound::Unbounded))
        .take_while(|(key, _)| key.starts_with(prefix))
        .map(|(_, kv)| kv);
    let limit = if opts.limit == 0 {
        usize::MAX
    } else {
        opts.limit
    };
    let items: Vec<KeyValue> = under.by_ref().take(limit).cloned().collect();
    let remaining = if opts.limit == 0 {
        0
    } else {
        under.count() as i64
    };
    ListResult {
        items,
        revision,
        more: remaining > 0,
        remaining,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(keys: &[&str]) -> BTreeMap<String, KeyValue> {
        keys.iter()
            .map(|k| {
                let kv = KeyValue {
                    key: k.to_string(),
                    value: bytes::Bytes::from_static(b"v"),
                    create_revision: 1,
                    mod_revision: 1,
                };
                (k.to_string(), kv)
            })
            .collect()
    }

    fn keys(r: &ListResult) -> Vec<&str> {
        r.items.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn pages_stay_inside_the_prefix_and_count_what_remains() {
        let all = objects(&["/r/a/1", "/r/a/2", "/r/a/3", "/r/a0", "/r/b/1"]);
        let first = page(
            &all,
            7,
            "/r/a/",
            &ListOptions {
                limit: 2,
                ..Default::default()
            },
        );
        assert_eq!(keys(&first), ["/r/a/1", "/r/a/2"]);
        assert!(first.more);
        assert_eq!((first.remaining, first.revision), (1, 7));
        let rest = page(
            &all,
            7,
            "/r/a/",
            &ListOptions {
                limit: 2,
                continue_after: Some("/r/a/2".into()),
                ..Default::default()
            },
        );
        assert_eq!(keys(&rest), ["/r/a/3"]);
        assert!(!rest.more);
        assert_eq!(rest.remaining, 0);
        // A continue key before the prefix starts at the prefix; no limit means all.
        let before = page(
            &all,
            7,
            "/r/a/",
            &ListOptions {
                continue_after: Some("/a".into()),
                ..Default::default()
            },
        );
        assert_eq!(keys(&before), ["/r/a/1", "/r/a/2", "/r/a/3"]);
        assert!(!before.more);
    }
}
