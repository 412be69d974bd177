//! Timestamps as the API writes them.

/// Now, as a `metav1.Time` (RFC 3339, whole seconds).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now, as a `metav1.MicroTime` (Lease renewTime).
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A CRI timestamp (nanoseconds since the epoch; 0 = unset) as a `metav1.Time`.
pub fn from_nanos(nanos: i64) -> Option<String> {
    if nanos <= 0 {
        return None;
    }
    let t = jiff::Timestamp::from_nanosecond(i128::from(nanos)).ok()?;
    Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}
