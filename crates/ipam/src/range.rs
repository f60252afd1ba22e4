//! Address ranges and range sets, validated and with the reference's defaults applied.
//!
//! A [`Range`] is one subnet with an inclusive `rangeStart..=rangeEnd` window and a gateway.
//! A [`RangeSet`] is a list of non-overlapping ranges of one address family; one address is
//! allocated per set, so two sets (one v4, one v6) give a dual-stack attachment.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::{ConfigError, Error};

/// One subnet to allocate from.
///
/// Defaults follow the reference host-local: `gateway` = network + 1, `rangeStart` =
/// network + 1 (the gateway is skipped while allocating, not excluded from the range),
/// `rangeEnd` = the last address before the broadcast for IPv4, the last address of the
/// subnet for IPv6. Explicit bounds may be any address of the subnet, the network and
/// broadcast addresses included, exactly as the reference accepts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    subnet: IpNet,
    start: IpAddr,
    end: IpAddr,
    gateway: IpAddr,
}

impl Range {
    /// Validate a range and fill in its defaults.
    ///
    /// Errors are [`Error::Config`] naming the field (`subnet`, `gateway`, `rangeStart`,
    /// `rangeEnd`); the config parser prefixes them with the range's path.
    pub fn new(
        subnet: IpNet,
        range_start: Option<IpAddr>,
        range_end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range, Error> {
        check_subnet(subnet)?;
        let first_host = offset(subnet.network(), 1);
        let gateway = match gateway.map(canonical) {
            None => first_host,
            Some(gw) if gw.is_ipv4() != subnet.addr().is_ipv4() => {
                let err = ConfigError::FamilyMismatch { ip: gw, subnet };
                return Err(Error::config("gateway", err));
            }
            Some(gw) => gw,
        };
        let start = range_start.map(canonical).unwrap_or(first_host);
        if !in_subnet(subnet, start) {
            let err = ConfigError::NotInSubnet { ip: start, subnet };
            return Err(Error::config("rangeStart", err));
        }
        let end = range_end.map(canonical).unwrap_or_else(|| last_usable(subnet));
        if !in_subnet(subnet, end) {
            let err = ConfigError::NotInSubnet { ip: end, subnet };
            return Err(Error::config("rangeEnd", err));
        }
        if end < start {
            let err = ConfigError::EndBeforeStart { start, end };
            return Err(Error::config("rangeEnd", err));
        }
        Ok(Range { subnet, start, end, gateway })
    }

    /// The subnet as configured (always the network address and its prefix).
    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    /// First allocatable address, inclusive.
    pub fn range_start(&self) -> IpAddr {
        self.start
    }

    /// Last allocatable address, inclusive.
    pub fn range_end(&self) -> IpAddr {
        self.end
    }

    /// The gateway handed out with every address of this range; never allocated.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// Whether `ip` lies within `rangeStart..=rangeEnd` (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.start.is_ipv4() && self.start <= ip && ip <= self.end
    }

    /// Whether the two windows share an address.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start.is_ipv4() == other.start.is_ipv4() && self.start <= other.end && other.start <= self.end
    }

    /// `ip` with this range's prefix length, as it goes into a CNI result.
    pub fn address(&self, ip: IpAddr) -> IpNet {
        // The prefix length came from a valid IpNet of the same family.
        IpNet::new(ip, self.subnet.prefix_len()).unwrap_or_else(|_| IpNet::from(ip))
    }
}

impl fmt::Display for Range {
    /// `rangeStart-rangeEnd`, the form the reference's error messages use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Non-overlapping ranges of one address family; one address is allocated per set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<Range>,
}

impl RangeSet {
    /// Validate a set: not empty, one family, no two ranges overlapping.
    pub fn new(ranges: Vec<Range>) -> Result<RangeSet, ConfigError> {
        let Some(first) = ranges.first() else {
            return Err(ConfigError::EmptyRangeSet);
        };
        let v4 = first.start.is_ipv4();
        if ranges.iter().any(|r| r.start.is_ipv4() != v4) {
            return Err(ConfigError::MixedFamilies);
        }
        for (i, a) in ranges.iter().enumerate() {
            if let Some(b) = ranges[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(ConfigError::RangesOverlap { first: a.to_string(), second: b.to_string() });
            }
        }
        Ok(RangeSet { ranges })
    }

    /// The ranges in configuration order (the allocation order).
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Whether this set allocates IPv6 addresses.
    pub fn is_ipv6(&self) -> bool {
        self.ranges.first().is_some_and(|r| r.start.is_ipv6())
    }

    /// The first range whose window holds `ip`.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    /// Whether any range of the set holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// Whether any range of this set overlaps any range of `other`.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.ranges.iter().any(|a| other.ranges.iter().any(|b| a.overlaps(b)))
    }
}

impl fmt::Display for RangeSet {
    /// `start-end,start-end`, as in the reference's messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 addresses become IPv4, as Go's `To4()` does in the reference.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The address as an integer, for stepping through a range.
pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The inverse of [`to_u128`] in the family of `like`; IPv4 values are truncated to 32 bits.
pub(crate) fn from_u128(value: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

// Only called where the result stays inside a validated subnet.
fn offset(ip: IpAddr, by: u128) -> IpAddr {
    from_u128(to_u128(ip).wrapping_add(by), ip)
}

fn last_usable(subnet: IpNet) -> IpAddr {
    match subnet {
        IpNet::V4(_) => from_u128(to_u128(subnet.broadcast()).wrapping_sub(1), subnet.addr()),
        IpNet::V6(_) => subnet.broadcast(),
    }
}

fn in_subnet(subnet: IpNet, ip: IpAddr) -> bool {
    ip.is_ipv4() == subnet.addr().is_ipv4() && subnet.contains(&ip)
}

fn check_subnet(subnet: IpNet) -> Result<(), Error> {
    // A /31 or /32 (/127, /128) leaves no host address once network+1 is the gateway.
    if subnet.prefix_len() > subnet.max_prefix_len() - 2 {
        return Err(Error::config("subnet", ConfigError::SubnetTooSmall { subnet }));
    }
    if let IpNet::V6(v6) = subnet
        && v6.network().to_ipv4_mapped().is_some()
    {
        return Err(Error::config("subnet", ConfigError::MappedSubnet { subnet }));
    }
    if subnet.addr() != subnet.network() {
        return Err(Error::config("subnet", ConfigError::HostBitsSet { subnet }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn range(subnet: &str) -> Range {
        Range::new(subnet.parse().unwrap(), None, None, None).unwrap()
    }

    #[test]
    fn v4_defaults_skip_network_and_broadcast() {
        let r = range("10.0.0.0/24");
        assert_eq!(r.range_start(), ip("10.0.0.1"));
        assert_eq!(r.range_end(), ip("10.0.0.254"));
        assert_eq!(r.gateway(), ip("10.0.0.1"));
        assert_eq!(r.to_string(), "10.0.0.1-10.0.0.254");
    }

    #[test]
    fn v6_default_end_is_last_address() {
        let r = range("2001:db8::/120");
        assert_eq!(r.range_start(), ip("2001:db8::1"));
        assert_eq!(r.range_end(), ip("2001:db8::ff"));
        assert_eq!(r.gateway(), ip("2001:db8::1"));
    }

    #[test]
    fn rejects_too_small_and_host_bits() {
        for s in ["10.0.0.0/31", "10.0.0.1/32", "2001:db8::/127", "2001:db8::1/128"] {
            let err = Range::new(s.parse().unwrap(), None, None, None).unwrap_err();
            assert!(err.to_string().contains("too small"), "{s}: {err}");
        }
        let err = Range::new("10.0.0.1/24".parse().unwrap(), None, None, None).unwrap_err();
        assert!(err.to_string().contains("host bits set"), "{err}");
        assert!(Range::new("10.0.0.0/30".parse().unwrap(), None, None, None).is_ok());
        let mapped = Range::new("::ffff:10.0.0.0/120".parse().unwrap(), None, None, None).unwrap_err();
        assert!(mapped.to_string().contains("IPv4-mapped"), "{mapped}");
    }

    #[test]
    fn validates_bounds_and_gateway() {
        let net: IpNet = "10.0.0.0/24".parse().unwrap();
        let outside = Range::new(net, Some(ip("10.0.1.5")), None, None).unwrap_err();
        assert_eq!(outside.to_string(), "rangeStart: 10.0.1.5 is not in network 10.0.0.0/24");
        let wrong_family = Range::new(net, None, Some(ip("::1")), None).unwrap_err();
        assert!(wrong_family.to_string().starts_with("rangeEnd"));
        let reversed = Range::new(net, Some(ip("10.0.0.9")), Some(ip("10.0.0.3")), None);
        assert!(reversed.unwrap_err().to_string().contains("before rangeStart"));
        let gw6 = Range::new(net, None, None, Some(ip("fe80::1"))).unwrap_err();
        assert!(gw6.to_string().starts_with("gateway"));
        // Like the reference, a gateway outside the subnet is accepted as given.
        assert!(Range::new(net, None, None, Some(ip("10.9.9.9"))).is_ok());
    }

    #[test]
    fn mapped_addresses_are_canonicalised() {
        let net: IpNet = "10.0.0.0/24".parse().unwrap();
        let r = Range::new(net, Some(ip("::ffff:10.0.0.10")), None, None).unwrap();
        assert_eq!(r.range_start(), ip("10.0.0.10"));
        assert!(r.contains(ip("::ffff:10.0.0.20")));
        assert!(!r.contains(ip("10.0.0.9")));
    }

    #[test]
    fn range_set_validation() {
        assert_eq!(RangeSet::new(vec![]), Err(ConfigError::EmptyRangeSet));
        let mixed = RangeSet::new(vec![range("10.0.0.0/24"), range("2001:db8::/64")]);
        assert_eq!(mixed, Err(ConfigError::MixedFamilies));
        let overlap = RangeSet::new(vec![range("10.0.0.0/24"), range("10.0.0.0/25")]);
        assert_eq!(
            overlap.unwrap_err().to_string(),
            "subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.0.126 overlap"
        );
        let net: IpNet = "10.0.0.0/24".parse().unwrap();
        let lo = Range::new(net, None, Some(ip("10.0.0.100")), None).unwrap();
        let hi = Range::new(net, Some(ip("10.0.0.101")), None, None).unwrap();
        let set = RangeSet::new(vec![lo, hi]).unwrap();
        assert_eq!(set.to_string(), "10.0.0.1-10.0.0.100,10.0.0.101-10.0.0.254");
        assert_eq!(set.range_for(ip("10.0.0.150")).unwrap().range_start(), ip("10.0.0.101"));
        assert!(!set.is_ipv6());
    }
}
