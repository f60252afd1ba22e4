//! Requested addresses: parsing them and deciding which range set serves which.
//!
//! The plugin gathers them, in the reference's order, from `CNI_ARGS` `IP=`, then
//! `args.cni.ips`, then `runtimeConfig.ips`.

use std::net::IpAddr;
use std::str::FromStr;

use crate::error::Error;
use crate::fields::parse_cidr;
use crate::range::{RangeSet, canonical};

/// Parse requested addresses given as `10.1.2.3` or `10.1.2.3/24` (the prefix is checked
/// and dropped: the range decides the prefix length). IPv4-mapped IPv6 becomes IPv4.
///
/// An empty string is an error, as in the reference's `args`/`runtimeConfig` parsing; an
/// empty `IP=` in `CNI_ARGS` means "none" there and should be skipped by the caller.
pub fn parse_requested(ips: &[String]) -> Result<Vec<IpAddr>, Error> {
    ips.iter().map(|s| parse_one(s)).collect()
}

fn parse_one(text: &str) -> Result<IpAddr, Error> {
    let bad = |reason: String| Error::RequestedIp { value: text.to_string(), reason };
    if text.is_empty() {
        return Err(bad("empty".into()));
    }
    let ip = if text.contains('/') {
        parse_cidr(text).map_err(bad)?.addr()
    } else {
        IpAddr::from_str(text).map_err(|e| bad(e.to_string()))?
    };
    Ok(canonical(ip))
}

/// For each range set, the requested address it must hand out, if any.
///
/// Each set takes the first still-unassigned request it contains (duplicates count once, as
/// the reference keys them in a map). Requests no set takes fail the whole ADD before
/// anything is written.
pub(crate) fn assign(sets: &[RangeSet], requested: &[IpAddr]) -> Result<Vec<Option<IpAddr>>, Error> {
    let mut pending: Vec<IpAddr> = Vec::with_capacity(requested.len());
    for ip in requested.iter().copied().map(canonical) {
        if !pending.contains(&ip) {
            pending.push(ip);
        }
    }
    let mut plan = Vec::with_capacity(sets.len());
    for set in sets {
        let pick = pending.iter().position(|ip| set.contains(*ip));
        plan.push(pick.map(|i| pending.remove(i)));
    }
    if pending.is_empty() { Ok(plan) } else { Err(Error::Unfulfilled { ips: pending }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::range::Range;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_plain_and_cidr_forms() {
        let got =
            parse_requested(&strings(&["10.1.2.3", "10.1.2.4/24", "2001:db8::5/64", "::ffff:10.1.2.6"]));
        assert_eq!(got.unwrap(), [ip("10.1.2.3"), ip("10.1.2.4"), ip("2001:db8::5"), ip("10.1.2.6")]);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "10.1.2", "10.1.2.3/33", "10.1.2.3/", "x/24", "10.1.2.3 "] {
            let err = parse_requested(&strings(&[bad])).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{bad}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    fn set(subnet: &str) -> RangeSet {
        RangeSet::new(vec![Range::new(subnet.parse().unwrap(), None, None, None).unwrap()]).unwrap()
    }

    #[test]
    fn assigns_one_per_set_in_request_order() {
        let sets = [set("10.0.0.0/24"), set("2001:db8::/64")];
        let plan = assign(&sets, &[ip("2001:db8::9"), ip("10.0.0.7"), ip("10.0.0.7")]).unwrap();
        assert_eq!(plan, [Some(ip("10.0.0.7")), Some(ip("2001:db8::9"))]);
        assert_eq!(assign(&sets, &[]).unwrap(), [None, None]);
    }

    #[test]
    fn leftovers_fail() {
        let sets = [set("10.0.0.0/24")];
        let err = assign(&sets, &[ip("10.0.0.7"), ip("10.0.0.8"), ip("10.9.0.1")]).unwrap_err();
        assert_eq!(err.to_string(), "failed to allocate all requested IPs: 10.0.0.8 10.9.0.1");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        // Outside rangeStart..rangeEnd is outside the set, even inside the subnet.
        assert!(assign(&sets, &[ip("10.0.0.255")]).is_err());
    }
}
