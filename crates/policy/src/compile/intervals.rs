//! Address and port intervals, merged into the disjoint, sorted elements an nft interval set
//! accepts (nft rejects overlapping elements: "conflicting intervals specified").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{Family, IpBlock};

/// A set of addresses of one family, as inclusive ranges of their numeric values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrRanges {
    ranges: Vec<(u128, u128)>,
}

impl AddrRanges {
    pub fn add_ip(&mut self, ip: IpAddr) {
        let n = num(ip);
        self.ranges.push((n, n));
    }

    /// Adds `cidr` minus every `except`.
    pub fn add_block(&mut self, block: &IpBlock) {
        let mut pieces = vec![(num(block.cidr.network()), num(block.cidr.broadcast()))];
        for e in &block.except {
            let (lo, hi) = (num(e.network()), num(e.broadcast()));
            pieces = pieces.into_iter().flat_map(|r| subtract(r, (lo, hi))).collect();
        }
        self.ranges.extend(pieces);
    }

    /// The sorted, merged ranges.
    pub fn merged(&self) -> Vec<(u128, u128)> {
        merge(self.ranges.clone())
    }
}

/// Every address of `family`.
pub fn full(family: Family) -> (u128, u128) {
    match family {
        Family::V4 => (0, u128::from(u32::MAX)),
        Family::V6 => (0, u128::MAX),
    }
}

/// Merges overlapping and adjacent inclusive ranges into sorted disjoint ones.
pub fn merge<T: Copy + Ord + Step>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if last.1.next().is_none_or(|after| lo <= after) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The successor of a value, if any (ranges are inclusive, so merging needs it).
pub trait Step: Sized {
    fn next(self) -> Option<Self>;
}

impl Step for u128 {
    fn next(self) -> Option<u128> {
        self.checked_add(1)
    }
}

impl Step for u16 {
    fn next(self) -> Option<u16> {
        self.checked_add(1)
    }
}

fn subtract((lo, hi): (u128, u128), (cut_lo, cut_hi): (u128, u128)) -> Vec<(u128, u128)> {
    if cut_hi < lo || cut_lo > hi {
        return vec![(lo, hi)];
    }
    let mut out = Vec::new();
    if cut_lo > lo {
        out.push((lo, cut_lo - 1));
    }
    if cut_hi < hi {
        out.push((cut_hi + 1, hi));
    }
    out
}

pub fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn addr(family: Family, n: u128) -> IpAddr {
    match family {
        // Ranges of one family only ever hold that family's values.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl AddrRanges {
        fn elements(&self, family: Family) -> Vec<String> {
            let part = |(lo, hi)| super::super::ruleset::addr_part(family, lo, hi);
            self.merged().into_iter().map(|r| fw::nft::text::key_part_text(&part(r))).collect()
        }
    }

    fn block(cidr: &str, except: &[&str]) -> IpBlock {
        IpBlock { cidr: cidr.parse().unwrap(), except: except.iter().map(|e| e.parse().unwrap()).collect() }
    }

    #[test]
    fn except_splits_the_block() {
        let mut r = AddrRanges::default();
        r.add_block(&block("10.0.0.0/24", &["10.0.0.16/28", "10.0.0.255/32"]));
        assert_eq!(r.elements(Family::V4), ["10.0.0.0/28", "10.0.0.32-10.0.0.254"]);
    }

    #[test]
    fn overlaps_and_neighbours_merge() {
        let mut r = AddrRanges::default();
        r.add_block(&block("10.0.0.0/25", &[]));
        r.add_block(&block("10.0.0.128/25", &[]));
        r.add_ip("10.0.0.7".parse().unwrap());
        r.add_ip("10.0.1.1".parse().unwrap());
        assert_eq!(r.elements(Family::V4), ["10.0.0.0/24", "10.0.1.1"]);
    }

    #[test]
    fn whole_spaces_and_v6() {
        let mut r = AddrRanges::default();
        r.add_block(&block("0.0.0.0/0", &[]));
        assert_eq!(r.elements(Family::V4), ["0.0.0.0/0"]);
        let mut r = AddrRanges::default();
        r.add_block(&block("::/0", &[]));
        assert_eq!(r.elements(Family::V6), ["::/0"]);
        let mut r = AddrRanges::default();
        r.add_block(&block("fd00::/64", &["fd00::/65"]));
        r.add_ip("fd00:1::5".parse().unwrap());
        assert_eq!(r.elements(Family::V6), ["fd00::8000:0:0:0/65", "fd00:1::5"]);
    }

    #[test]
    fn port_ranges_merge() {
        assert_eq!(merge(vec![(80u16, 80), (79, 81), (82, 90), (100, 100)]), [(79, 90), (100, 100)]);
        assert_eq!(merge(vec![(0u16, 65535), (65535, 65535)]), [(0, 65535)]);
    }
}
