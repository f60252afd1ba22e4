//! The round-robin order in which a range set offers addresses.
//!
//! Same walk as the reference's `RangeIter`: start just after the last reserved address when
//! that address is still inside the set (else at `rangeStart` of the first range), step to
//! `rangeEnd` inclusive, continue at the next range's start, wrap to the first range, and stop
//! after offering every address once; the last reserved address itself comes last. Each
//! range's own gateway is never offered.

use std::net::IpAddr;

use crate::range::{RangeSet, from_u128, to_u128};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    range: usize,
    addr: u128,
}

/// Lazily yields `(range index, address)` pairs; never materialises a range, so a /64 is fine.
#[derive(Debug)]
pub(crate) struct Candidates<'a> {
    set: &'a RangeSet,
    first: Position,
    next: Option<Position>,
}

impl<'a> Candidates<'a> {
    /// The walk for `set`, resuming after `last_reserved` when the set contains it.
    pub(crate) fn new(set: &'a RangeSet, last_reserved: Option<IpAddr>) -> Candidates<'a> {
        let ranges = set.ranges();
        let resume = last_reserved.and_then(|last| {
            let range = ranges.iter().position(|r| r.contains(last))?;
            let addr = to_u128(crate::range::canonical(last));
            Some(Position { range, addr })
        });
        let first = match resume {
            Some(pos) => advance(set, pos),
            None => Position { range: 0, addr: ranges.first().map_or(0, |r| to_u128(r.range_start())) },
        };
        let next = (!ranges.is_empty()).then_some(first);
        Candidates { set, first, next }
    }
}

impl Iterator for Candidates<'_> {
    type Item = (usize, IpAddr);

    fn next(&mut self) -> Option<(usize, IpAddr)> {
        loop {
            let pos = self.next?;
            let following = advance(self.set, pos);
            self.next = (following != self.first).then_some(following);
            let range = &self.set.ranges()[pos.range];
            let ip = from_u128(pos.addr, range.range_start());
            if ip != range.gateway() {
                return Some((pos.range, ip));
            }
        }
    }
}

fn advance(set: &RangeSet, pos: Position) -> Position {
    let ranges = set.ranges();
    if pos.addr >= to_u128(ranges[pos.range].range_end()) {
        let range = (pos.range + 1) % ranges.len();
        Position { range, addr: to_u128(ranges[range].range_start()) }
    } else {
        Position { range: pos.range, addr: pos.addr + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::range::Range;

    fn set(subnets: &[&str]) -> RangeSet {
        let ranges =
            subnets.iter().map(|s| Range::new(s.parse().unwrap(), None, None, None).unwrap()).collect();
        RangeSet::new(ranges).unwrap()
    }

    fn walk(set: &RangeSet, last: Option<&str>) -> Vec<String> {
        let last = last.map(|s| s.parse().unwrap());
        Candidates::new(set, last).map(|(_, ip)| ip.to_string()).collect()
    }

    #[test]
    fn from_the_beginning_skips_gateway() {
        let s = set(&["192.168.1.0/29"]);
        assert_eq!(
            walk(&s, None),
            ["192.168.1.2", "192.168.1.3", "192.168.1.4", "192.168.1.5", "192.168.1.6"]
        );
    }

    #[test]
    fn from_the_end_wraps() {
        let s = set(&["192.168.1.0/29"]);
        assert_eq!(walk(&s, Some("192.168.1.6")), walk(&s, None));
    }

    #[test]
    fn from_the_middle_ends_with_last_reserved() {
        let s = set(&["192.168.1.0/29"]);
        let got = walk(&s, Some("192.168.1.3"));
        assert_eq!(got, ["192.168.1.4", "192.168.1.5", "192.168.1.6", "192.168.1.2", "192.168.1.3"]);
    }

    #[test]
    fn last_reserved_outside_the_set_restarts() {
        let s = set(&["10.0.0.0/29"]);
        assert_eq!(walk(&s, Some("10.0.0.128")), walk(&s, None));
        assert_eq!(walk(&s, Some("2001:db8::5")), walk(&s, None));
    }

    #[test]
    fn crosses_ranges_and_wraps_to_the_first() {
        let s = set(&["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"]);
        assert_eq!(walk(&s, Some("10.0.0.2")), ["10.0.1.2", "10.0.2.2", "10.0.0.2"]);
        assert_eq!(walk(&s, Some("10.0.2.2")), ["10.0.0.2", "10.0.1.2", "10.0.2.2"]);
        let (range, _) = Candidates::new(&s, Some("10.0.0.2".parse().unwrap())).next().unwrap();
        assert_eq!(range, 1);
    }

    #[test]
    fn ipv6_is_lazy() {
        let s = set(&["2001:db8::/64"]);
        let first: Vec<String> = Candidates::new(&s, None).take(2).map(|(_, ip)| ip.to_string()).collect();
        assert_eq!(first, ["2001:db8::2", "2001:db8::3"]);
        let last = Some("2001:db8::ffff:ffff:ffff:ffff".parse().unwrap());
        let (_, wrapped) = Candidates::new(&s, last).next().unwrap();
        assert_eq!(wrapped.to_string(), "2001:db8::2");
    }
}
