//! Upstream's IP library: `ip()`, `isIP()`, `ip.isCanonical()`, the methods of a
//! `net.IP` and its `string()` (CIDRs are in `cidr.rs`). Parsing follows Go's `net/netip` as upstream restricts it: no zones,
//! no IPv4-mapped IPv6 addresses, no leading zeros in IPv4 octets. The reasons
//! of parse errors are Go's for IPv4 and a generic one for IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::Env;
use cel::common::types::STRING_TYPE;

use super::{Args, Ret, arg, boolean, custom, fail, int, library_type, str_arg, string};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ip(pub(super) IpAddr);

library_type!(Ip, IP, "net.IP");

/// Go's `netip.ParseAddr` with its error message.
pub(super) fn parse_addr(s: &str) -> Result<IpAddr, String> {
    let err = |why: &str| format!("ParseAddr({s:?}): {why}");
    if s.contains(':') {
        return s
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| err("unable to parse IP"));
    }
    if !s.contains('.') {
        return Err(err("unable to parse IP"));
    }
    let fields: Vec<&str> = s.split('.').collect();
    for (i, f) in fields.iter().enumerate() {
        if let Some(bad) = f.find(|c: char| !c.is_ascii_digit()) {
            let at: usize = fields[..i].iter().map(|x| x.len() + 1).sum::<usize>() + bad;
            return Err(err(&format!("unexpected character (at {:?})", &s[at..])));
        }
        if f.is_empty() {
            return Err(err("IPv4 field must have at least one digit"));
        }
        if f.len() > 1 && f.starts_with('0') {
            return Err(err("IPv4 field has octet with leading zero"));
        }
        if f.parse::<u32>().map_or(true, |v| v > 255) {
            return Err(err("IPv4 field has value >255"));
        }
    }
    match fields.len() {
        4 => s
            .parse::<Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| err("unable to parse IP")),
        n if n < 4 => Err(err("IPv4 address too short")),
        _ => Err(err("IPv4 address too long")),
    }
}

pub(super) fn mapped(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// upstream's `parseIPAddr`.
pub(super) fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if let Some((addr, _zone)) = s.split_once('%')
        && addr.parse::<Ipv6Addr>().is_ok()
    {
        return Err(format!("IP address {s:?} with zone value is not allowed"));
    }
    let addr = parse_addr(s)
        .map_err(|e| format!("IP Address {s:?} parse error during conversion from string: {e}"))?;
    if mapped(&addr) {
        return Err(format!("IPv4-mapped IPv6 address {s:?} is not allowed"));
    }
    Ok(addr)
}

pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(Ip::TYPE)?;
    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], to_ip)?;
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        is_canonical,
    )?;
    env.add_overload("string", "ip_to_string", vec![Ip::TYPE], ip_string)?;
    env.add_member_overload("family", "ip_family", Ip::TYPE, vec![], family)?;
    let checks: [(&str, &str, super::Predicate); 5] = [
        ("isUnspecified", "ip_is_unspecified", is_unspecified),
        ("isLoopback", "ip_is_loopback", is_loopback),
        (
            "isLinkLocalMulticast",
            "ip_is_link_local_multicast",
            is_ll_multicast,
        ),
        (
            "isLinkLocalUnicast",
            "ip_is_link_local_unicast",
            is_ll_unicast,
        ),
        ("isGlobalUnicast", "ip_is_global_unicast", is_global_unicast),
    ];
    for (name, id, f) in checks {
        env.add_member_overload(name, id, Ip::TYPE, vec![], f)?;
    }
    Ok(())
}

fn to_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(Ip(parse_ip(&str_arg(&args, 0)?).map_err(fail)?))
}

fn is_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(parse_ip(&str_arg(&args, 0)?).is_ok())
}

/// Rust prints IPv6 addresses in RFC 5952 form, as Go does.
fn is_canonical<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg(&args, 0)?;
    boolean(parse_ip(&s).map_err(fail)?.to_string() == s)
}

fn ip_string<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    string(arg::<Ip>(&args, 0)?.0.to_string())
}

fn family<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    int(if arg::<Ip>(&args, 0)?.0.is_ipv4() {
        4
    } else {
        6
    })
}

fn test<'b, 'v>(args: Args<'b, 'v>, f: fn(&IpAddr) -> bool) -> Ret<'b, 'v> {
    boolean(f(&arg::<Ip>(&args, 0)?.0))
}

fn is_unspecified<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    test(args, IpAddr::is_unspecified)
}

fn is_loopback<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    test(args, IpAddr::is_loopback)
}

/// 224.0.0.0/24, ff02::/16 (Go's definition).
fn is_ll_multicast<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    test(args, |a| match a {
        IpAddr::V4(a) => a.octets()[..3] == [224, 0, 0],
        IpAddr::V6(a) => a.segments()[0] & 0xff0f == 0xff02,
    })
}

/// 169.254.0.0/16, fe80::/10.
fn is_ll_unicast<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    test(args, |a| match a {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
    })
}

/// Go's `IsGlobalUnicast`: private ranges count, as in Go.
fn is_global_unicast<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    test(args, |a| {
        let ll = match a {
            IpAddr::V4(v) => v.is_link_local() || v.is_broadcast(),
            IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
        };
        !(a.is_unspecified() || a.is_loopback() || a.is_multicast() || ll)
    })
}

#[cfg(test)]
mod tests {
    use super::super::{eval_err, yes};

    #[test]
    fn ips_parse_as_upstream_restricts_them() {
        yes("isIP('127.0.0.1') && isIP('::1') && !isIP('127.0.0.256') && !isIP(':::1')");
        yes("!isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0') && !isIP('01.2.3.4')");
        assert_eq!(
            eval_err("ip('127.0.0.256')"),
            r#"IP Address "127.0.0.256" parse error during conversion from string: ParseAddr("127.0.0.256"): IPv4 field has value >255"#
        );
        assert_eq!(
            eval_err("ip('::ffff:1.2.3.4')"),
            r#"IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed"#
        );
        yes("ip.isCanonical('127.0.0.1') && ip.isCanonical('2001:db8::abcd')");
        yes("!ip.isCanonical('2001:DB8::ABCD') && !ip.isCanonical('2001:db8::0:0:0:abcd')");
    }

    #[test]
    fn ip_methods() {
        yes("ip('127.0.0.1').family() == 4 && ip('::1').family() == 6");
        yes(
            "ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified() && !ip('::1').isUnspecified()",
        );
        yes(
            "ip('127.0.0.1').isLoopback() && ip('::1').isLoopback() && !ip('2001:db8::abcd').isLoopback()",
        );
        yes("ip('224.0.0.1').isLinkLocalMulticast() && !ip('224.0.1.1').isLinkLocalMulticast()");
        yes("ip('ff02::1').isLinkLocalMulticast() && !ip('fd00::1').isLinkLocalMulticast()");
        yes(
            "ip('169.254.169.254').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast() && !ip('fd80::1').isLinkLocalUnicast()",
        );
        yes("ip('192.168.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()");
        yes("ip('2001:db8::abcd').isGlobalUnicast() && !ip('ff00::1').isGlobalUnicast()");
        yes("string(ip('2001:DB8::1')) == '2001:db8::1' && ip('::1') == ip('0:0::1')");
    }
}
