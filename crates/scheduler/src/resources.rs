//! Resource quantities as the scheduler counts them: CPU in millicores, everything
//! else in whole units (bytes for memory and storage).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Parses a Kubernetes quantity (`100m`, `1.5`, `128Mi`, `1G`, `2e3`) into thousandths
/// of its unit, so CPU millicores and byte counts both fit.
pub fn parse_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (mantissa, exp10): (&str, i32) = match suffix {
        s if s.starts_with(['e', 'E']) => (num, s[1..].parse().ok()?),
        _ => (num, 0),
    };
    let multiplier: i128 = match suffix {
        "" => 1000,
        "m" => 1,
        "k" => 1000 * 1000,
        "M" => 1000 * 1_000_000,
        "G" => 1000 * 1_000_000_000,
        "T" => 1000 * 1_000_000_000_000,
        "P" => 1000 * 1_000_000_000_000_000,
        "Ki" => 1000 * 1024,
        "Mi" => 1000 * (1 << 20),
        "Gi" => 1000 * (1 << 30),
        "Ti" => 1000 * (1 << 40),
        "Pi" => 1000 * (1 << 50),
        s if s.starts_with(['e', 'E']) => 1000,
        _ => return None,
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let negative = int_part.starts_with('-');
    let int_digits = int_part.trim_start_matches(['-', '+']);
    let digits = format!("{int_digits}{frac_part}");
    let mut value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut scale = -(frac_part.len() as i32) + exp10;
    let mut result = value.checked_mul(multiplier)?;
    while scale > 0 {
        result = result.checked_mul(10)?;
        scale -= 1;
    }
    while scale < 0 {
        // Round up what is left, as upstream's ScaledValue does for requests.
        let rem = result % 10;
        result /= 10;
        if rem != 0 {
            result += 1;
        }
        scale += 1;
    }
    value = result;
    Some(if negative { -value } else { value })
}

/// A quantity in its natural unit: millicores for `cpu`, bytes (or count) otherwise.
pub fn amount(resource: &str, q: &Quantity) -> i64 {
    let milli = parse_milli(&q.0).unwrap_or(0);
    let v = if resource == "cpu" {
        milli
    } else {
        (milli + 999) / 1000
    };
    v.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Resource amounts by name.
pub type Resources = BTreeMap<String, i64>;

fn container_requests(c: &Container) -> Resources {
    let mut out = Resources::new();
    if let Some(r) = &c.resources {
        // Requests default to limits when only limits are set (upstream defaulting).
        if let Some(limits) = &r.limits {
            for (k, v) in limits {
                out.insert(k.clone(), amount(k, v));
            }
        }
        if let Some(req) = &r.requests {
            for (k, v) in req {
                out.insert(k.clone(), amount(k, v));
            }
        }
    }
    out
}

/// The pod's effective requests: the larger of the sum over containers and the
/// largest init container, plus overhead (upstream's `resource.PodRequests`).
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut total = Resources::new();
    for c in &spec.containers {
        for (k, v) in container_requests(c) {
            *total.entry(k).or_default() += v;
        }
    }
    for c in spec.init_containers.iter().flatten() {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        for (k, v) in container_requests(c) {
            let e = total.entry(k).or_default();
            if sidecar {
                *e += v;
            } else {
                *e = (*e).max(v);
            }
        }
    }
    for (k, v) in spec.overhead.iter().flatten() {
        *total.entry(k.clone()).or_default() += amount(k, v);
    }
    total
}

/// Upstream scores pods without requests as if they asked for 100m CPU and 200 MiB.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("128Mi"), Some(128 * 1024 * 1024 * 1000));
        assert_eq!(parse_milli("1G"), Some(1_000_000_000_000));
        assert_eq!(parse_milli("2e3"), Some(2_000_000));
        assert_eq!(parse_milli("bogus"), None);
        assert_eq!(amount("cpu", &Quantity("250m".into())), 250);
        assert_eq!(amount("memory", &Quantity("1Ki".into())), 1024);
        assert_eq!(amount("pods", &Quantity("110".into())), 110);
    }
}
