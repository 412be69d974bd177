//! Upstream's CIDR library: `cidr()`, `isCIDR()`, the methods of a `net.CIDR`
//! (`containsIP`, `containsCIDR`, `ip`, `masked`, `prefixLength`) and its
//! `string()`, over Go's `netip.ParsePrefix` rules (`ip.rs` parses the address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cel::common::types::STRING_TYPE;
use cel::{Env, ExecutionError};

use super::ip::{Ip, mapped, parse_addr, parse_ip};
use super::{Args, Ret, arg, boolean, custom, fail, int, library_type, str_arg, string};

/// An address and a prefix length; the address may have bits past the prefix
/// (`cidr('192.168.0.1/24')`), as upstream's may.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cidr {
    addr: IpAddr,
    bits: u8,
}

library_type!(Cidr, CIDR, "net.CIDR");

/// upstream's `parseCIDR` over Go's `netip.ParsePrefix`.
fn parse_cidr(s: &str) -> Result<Cidr, String> {
    const CONTEXT: &str = "network address parse error during conversion from string";
    let err = |why: String| format!("{CONTEXT}: netip.ParsePrefix({s:?}): {why}");
    let (addr, bits) = s.rsplit_once('/').ok_or_else(|| err("no '/'".into()))?;
    if addr.contains('%') {
        return Err(err("IPv6 zones cannot be present in a prefix".into()));
    }
    let addr = parse_addr(addr).map_err(err)?;
    let bad_bits = || err(format!("bad bits after slash: {bits:?}"));
    if bits.len() > 1 && !bits.starts_with(|c: char| ('1'..='9').contains(&c)) {
        return Err(bad_bits());
    }
    let bits: u8 = bits.parse().map_err(|_| bad_bits())?;
    if bits > max_bits(&addr) {
        return Err(err("prefix length out of range".into()));
    }
    if mapped(&addr) {
        return Err(format!("IPv4-mapped IPv6 address {s:?} is not allowed"));
    }
    Ok(Cidr { addr, bits })
}

fn max_bits(a: &IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

impl Cidr {
    fn masked(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Cidr {
            addr,
            bits: self.bits,
        }
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4()
            && Cidr {
                addr: *ip,
                bits: self.bits,
            }
            .masked()
                == self.masked()
    }
}
pub(super) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_type(Cidr::TYPE)?;
    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], to_cidr)?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_overload("string", "cidr_to_string", vec![Cidr::TYPE], cidr_string)?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_string",
        Cidr::TYPE,
        vec![STRING_TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_ip",
        Cidr::TYPE,
        vec![Ip::TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        Cidr::TYPE,
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr",
        Cidr::TYPE,
        vec![Cidr::TYPE],
        contains_cidr,
    )?;
    env.add_member_overload("ip", "cidr_ip", Cidr::TYPE, vec![], cidr_ip)?;
    env.add_member_overload(
        "prefixLength",
        "cidr_prefix_length",
        Cidr::TYPE,
        vec![],
        prefix_length,
    )?;
    env.add_member_overload("masked", "cidr_masked", Cidr::TYPE, vec![], masked)?;
    Ok(())
}

fn to_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let s = str_arg(&args, 0)?;
    let error = |e| {
        fail(format!(
            "network address parse error during conversion from string: {e}"
        ))
    };
    custom(parse_cidr(&s).map_err(error)?)
}

fn is_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    boolean(parse_cidr(&str_arg(&args, 0)?).is_ok())
}

fn cidr_string<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>(&args, 0)?;
    string(format!("{}/{}", c.addr, c.bits))
}

/// A string operand that does not parse is a `no such overload` error upstream.
fn no_overload(name: &str) -> ExecutionError {
    ExecutionError::no_such_overload(name, vec![])
}

fn contains_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>(&args, 0)?;
    let ip = match arg::<Ip>(&args, 1) {
        Ok(ip) => ip.0,
        Err(_) => parse_ip(&str_arg(&args, 1)?).map_err(|_| no_overload("containsIP"))?,
    };
    boolean(c.contains(&ip))
}

fn contains_cidr<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    let c = arg::<Cidr>(&args, 0)?;
    let other = match arg::<Cidr>(&args, 1) {
        Ok(o) => o.clone(),
        Err(_) => parse_cidr(&str_arg(&args, 1)?).map_err(|_| no_overload("containsCIDR"))?,
    };
    boolean(c.contains(&other.addr) && c.bits <= other.bits)
}

fn cidr_ip<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(Ip(arg::<Cidr>(&args, 0)?.addr))
}

fn prefix_length<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    int(i64::from(arg::<Cidr>(&args, 0)?.bits))
}

fn masked<'b, 'v>(args: Args<'b, 'v>) -> Ret<'b, 'v> {
    custom(arg::<Cidr>(&args, 0)?.masked())
}

#[cfg(test)]
mod tests {
    use super::super::{eval_err, yes};

    #[test]
    fn cidrs() {
        yes(
            "isCIDR('192.168.0.0/16') && isCIDR('::1/128') && !isCIDR('192.168.0.0/33') && !isCIDR('::1/129')",
        );
        yes("isCIDR('192.168.0.1/16') && !isCIDR('10.0.0.0/08') && !isCIDR('10.0.0.0')");
        assert_eq!(
            eval_err("cidr('192.168.0.0/33')"),
            r#"network address parse error during conversion from string: network address parse error during conversion from string: netip.ParsePrefix("192.168.0.0/33"): prefix length out of range"#
        );
        yes(
            "cidr('192.168.0.0/24').containsIP(ip('192.168.0.1')) && !cidr('192.168.0.0/24').containsIP('192.168.1.1')",
        );
        yes(
            "cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24')) && !cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24')",
        );
        yes(
            "!cidr('192.168.0.0/24').containsCIDR('192.168.0.0/16') && !cidr('::/0').containsIP('1.2.3.4')",
        );
        yes(
            "cidr('192.168.0.1/24').ip() == ip('192.168.0.1') && cidr('::1/128').ip().family() == 6",
        );
        yes(
            "cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24') && cidr('192.168.0.1/24') != cidr('192.168.0.1/24').masked()",
        );
        yes(
            "cidr('192.168.0.0/16').prefixLength() == 16 && string(cidr('10.1.0.0/16')) == '10.1.0.0/16'",
        );
        yes(
            "cidr('0.0.0.0/0').containsIP('8.8.8.8') && cidr('0.0.0.0/0').masked() == cidr('0.0.0.0/0')",
        );
    }
}
