//! An address pool for load balancers (`--servicelb-address-pool`), as MetalLB's
//! IPAddressPool: each `type: LoadBalancer` Service gets one address of its own from
//! the pool instead of the nodes' addresses. The pool must be routed to the nodes
//! (a static route or the nodes answering for it); every node's proxy serves it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Addresses given as CIDRs (`192.0.2.0/28`) or inclusive ranges
/// (`192.0.2.10-192.0.2.20`), in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPool {
    ranges: Vec<(IpAddr, IpAddr)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("{0:?} is neither a CIDR (192.0.2.0/28) nor a range (192.0.2.10-192.0.2.20)")]
    Malformed(String),
    #[error("range {0:?} mixes IPv4 and IPv6 or ends before it starts")]
    BadRange(String),
}

impl FromStr for AddressPool {
    type Err = PoolError;

    /// Comma-separated CIDRs and ranges.
    fn from_str(s: &str) -> Result<Self, PoolError> {
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((a, b)) = part.split_once('-') {
                let parse = |x: &str| {
                    x.trim()
                        .parse::<IpAddr>()
                        .map_err(|_| PoolError::Malformed(part.into()))
                };
                let (a, b) = (parse(a)?, parse(b)?);
                if a.is_ipv4() != b.is_ipv4() || a > b {
                    return Err(PoolError::BadRange(part.into()));
                }
                ranges.push((a, b));
            } else {
                let net: IpNet = part
                    .parse()
                    .map_err(|_| PoolError::Malformed(part.into()))?;
                ranges.push(usable(net));
            }
        }
        Ok(Self { ranges })
    }
}

/// A CIDR's addresses without its network and broadcast addresses when it has them
/// (a /31, /32, /127 or /128 is used whole, as MetalLB's `avoidBuggyIPs` would not).
fn usable(net: IpNet) -> (IpAddr, IpAddr) {
    let (first, last) = (net.network(), net.broadcast());
    let whole = net.max_prefix_len() - net.prefix_len() <= 1;
    match (whole, first, last) {
        (false, IpAddr::V4(a), IpAddr::V4(b)) => (
            IpAddr::V4((u32::from(a) + 1).into()),
            IpAddr::V4((u32::from(b) - 1).into()),
        ),
        // IPv6 has no broadcast; skip only the subnet-router anycast address.
        (false, IpAddr::V6(a), b) => (IpAddr::V6((u128::from(a) + 1).into()), b),
        _ => (first, last),
    }
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn next(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(a) => u128::from(a).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

impl AddressPool {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|(a, b)| *a <= ip && ip <= *b)
    }

    /// The address a Service gets: the one it `has` if it is in the pool and not
    /// `taken` by another Service, else the one it `asks` for (`spec.loadBalancerIP`)
    /// under the same conditions, else the lowest free one; None when the pool is
    /// exhausted (or the requested address cannot be had: a Service asking for a
    /// specific address gets that one or none, as upstream's load balancers do).
    pub fn assign(
        &self,
        has: Option<IpAddr>,
        asks: Option<IpAddr>,
        taken: &BTreeSet<IpAddr>,
    ) -> Option<IpAddr> {
        let free = |ip: IpAddr| self.contains(ip) && !taken.contains(&ip);
        if let Some(asked) = asks {
            return free(asked).then_some(asked);
        }
        if let Some(ip) = has.filter(|ip| free(*ip)) {
            return Some(ip);
        }
        self.ranges.iter().find_map(|&(a, b)| {
            let mut ip = a;
            loop {
                if !taken.contains(&ip) {
                    return Some(ip);
                }
                if ip == b {
                    return None;
                }
                ip = next(ip)?;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_and_ranges_parse_and_bad_input_is_named() {
        let pool: AddressPool = "192.0.2.0/30, 198.51.100.7-198.51.100.9".parse().unwrap();
        assert_eq!(
            pool.to_string(),
            "192.0.2.1-192.0.2.2,198.51.100.7-198.51.100.9"
        );
        assert!(pool.contains(ip("198.51.100.8")));
        assert!(!pool.contains(ip("192.0.2.3")));
        let single: AddressPool = "192.0.2.9/32".parse().unwrap();
        assert_eq!(single.to_string(), "192.0.2.9-192.0.2.9");
        assert_eq!(
            "192.0.2.9-192.0.2.1".parse::<AddressPool>(),
            Err(PoolError::BadRange("192.0.2.9-192.0.2.1".into()))
        );
        let err = "lots".parse::<AddressPool>().unwrap_err().to_string();
        assert!(err.contains("\"lots\""), "{err}");
    }

    #[test]
    fn assignment_keeps_addresses_honours_requests_and_fills_gaps() {
        let pool: AddressPool = "192.0.2.10-192.0.2.12".parse().unwrap();
        let mut taken = BTreeSet::new();
        assert_eq!(pool.assign(None, None, &taken), Some(ip("192.0.2.10")));
        taken.insert(ip("192.0.2.10"));
        // A Service keeps what it has.
        assert_eq!(
            pool.assign(Some(ip("192.0.2.12")), None, &taken),
            Some(ip("192.0.2.12"))
        );
        // An address outside the pool or taken is replaced by the lowest free one.
        assert_eq!(
            pool.assign(Some(ip("203.0.113.1")), None, &taken),
            Some(ip("192.0.2.11"))
        );
        // A requested address: that one or none.
        assert_eq!(
            pool.assign(None, Some(ip("192.0.2.12")), &taken),
            Some(ip("192.0.2.12"))
        );
        assert_eq!(pool.assign(None, Some(ip("192.0.2.10")), &taken), None);
        taken.extend([ip("192.0.2.11"), ip("192.0.2.12")]);
        assert_eq!(pool.assign(None, None, &taken), None, "exhausted");
    }
}
