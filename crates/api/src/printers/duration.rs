//! Upstream's `duration.HumanDuration` (apimachinery util/duration): the AGE format,
//! two significant units at most (`45s`, `5m30s`, `3h10m`, `2d5h`, `3y40d`).

use jiff::{SignedDuration, Timestamp};

/// The human form of `d`. Up to two seconds into the future counts as now (`0s`),
/// allowing for clock skew; beyond that the answer is `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream's `translateTimestampSince`: how long ago `ts` (an RFC 3339 string) was,
/// or `<unknown>` when it is absent, unparsable or the zero time.
pub fn translate_timestamp_since(ts: Option<&str>, now: Timestamp) -> String {
    match ts.and_then(parse_time) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// A metav1.Time or MicroTime; None for the zero time Go writes for unset values.
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    let t: Timestamp = s.parse().ok()?;
    // 0001-01-01T00:00:00Z, Go's zero time.
    (t.as_second() != -62_135_596_800).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_upstream_table() {
        // Cases from upstream's duration_test.go and the boundaries of each rule.
        let s = |n: i64| SignedDuration::from_secs(n);
        let (m, h, d) = (60, 3600, 86400);
        let cases = [
            (s(-2), "<invalid>"),
            (s(-1), "0s"),
            (SignedDuration::from_millis(-1500), "0s"),
            (s(0), "0s"),
            (s(1), "1s"),
            (s(119), "119s"),
            (s(2 * m), "2m"),
            (s(2 * m + 5), "2m5s"),
            (s(9 * m + 59), "9m59s"),
            (s(10 * m), "10m"),
            (s(10 * m + 30), "10m"),
            (s(179 * m), "179m"),
            (s(3 * h), "3h"),
            (s(3 * h + 10 * m), "3h10m"),
            (s(7 * h + 59 * m), "7h59m"),
            (s(8 * h), "8h"),
            (s(47 * h + 59 * m), "47h"),
            (s(2 * d), "2d"),
            (s(2 * d + 5 * h), "2d5h"),
            (s(7 * d + 23 * h), "7d23h"),
            (s(8 * d), "8d"),
            (s(729 * d), "729d"),
            (s(730 * d), "2y"),
            (s(365 * 3 * d + 40 * d), "3y40d"),
            (s(365 * 8 * d), "8y"),
            (s(365 * 20 * d + 100 * d), "20y"),
        ];
        for (dur, want) in cases {
            assert_eq!(human_duration(dur), want, "{dur:?}");
        }
    }

    #[test]
    fn translates_timestamps() {
        let now: Timestamp = "2024-05-01T10:05:30Z".parse().unwrap();
        let since = |t: Option<&str>| translate_timestamp_since(t, now);
        assert_eq!(since(Some("2024-05-01T10:00:00Z")), "5m30s");
        assert_eq!(since(Some("2024-05-01T10:05:29.5Z")), "0s");
        assert_eq!(since(None), "<unknown>");
        assert_eq!(since(Some("garbage")), "<unknown>");
        assert_eq!(since(Some("0001-01-01T00:00:00Z")), "<unknown>");
    }
}
