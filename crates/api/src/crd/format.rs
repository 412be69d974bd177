//! The string formats a CRD schema may name (`format: date-time` …) that are checked,
//! and Go's `%v` rendering of the float limits in validation messages.

/// Whether `text` is in `format`; formats this server does not know always pass, as
/// upstream ignores formats outside its registry.
pub fn check_format(format: &str, text: &str) -> bool {
    match format {
        "date-time" | "datetime" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => text.parse::<jiff::civil::Date>().is_ok() && text.len() == 10,
        "byte" => crate::strategies::util::base64_decoded_len(text).is_some(),
        "uuid" => uuid(text),
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => cidr(text),
        "hostname" => {
            !text.is_empty() && crate::strategies::names::dns1123_subdomain(text).is_empty()
        }
        "email" => text
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.')),
        _ => true,
    }
}

fn uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Go's `%v` of a float64: shortest digits, exponent form from 1e+06 or below 1e-04.
pub fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let e = format!("{f:e}");
    let (mant, ex) = e.split_once('e').unwrap_or((&e, "0"));
    let n: i32 = ex.parse().unwrap_or(0);
    if (-4..6).contains(&n) {
        return format!("{f}");
    }
    let sign = if n < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", n.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_render_like_go() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1000000.0), "1e+06");
        assert_eq!(go_float(-3.0), "-3");
        assert_eq!(go_float(0.00001), "1e-05");
    }

    #[test]
    fn formats() {
        assert!(check_format("date-time", "2024-01-02T03:04:05Z"));
        assert!(!check_format("date-time", "yesterday"));
        assert!(check_format("date", "2024-01-02"));
        assert!(check_format("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(check_format("cidr", "10.0.0.0/8"));
        assert!(!check_format("ipv4", "10.0.0"));
        assert!(check_format("whatever", "x"));
    }
}
