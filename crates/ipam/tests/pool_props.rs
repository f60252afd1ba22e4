//! Property tests of the cluster-wide pool arithmetic against a brute-force model: the
//! candidates of a range are the addresses of its window not in any exclusion; `nth_free`
//! is the k-th of those not taken, `free` their count, and `choose` only ever offers one of
//! them. Small IPv4 and IPv6 subnets (enumerable), and IPv6 windows placed anywhere in a
//! /32, so the arithmetic is checked far beyond 64-bit offsets.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use twill_ipam::{PoolRange, RangeRequest, choose_all};

/// A subnet's base as an integer, its family and its host bits.
#[derive(Debug, Clone, Copy)]
struct Shape {
    v6: bool,
    base: u128,
    host_bits: u8,
}

impl Shape {
    fn ip(&self, v: u128) -> IpAddr {
        if self.v6 { IpAddr::V6(Ipv6Addr::from(v)) } else { IpAddr::V4(Ipv4Addr::from(v as u32)) }
    }

    fn net(&self, base: u128, bits: u8) -> IpNet {
        let max = if self.v6 { 128 } else { 32 };
        IpNet::new(self.ip(base), max - bits).unwrap()
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        (2u8..=7).prop_map(|b| Shape { v6: false, base: 0x0a14_1e00, host_bits: b }),
        (2u8..=7).prop_map(|b| Shape { v6: true, base: 0xfd00_0001u128 << 96, host_bits: b }),
        // A small window at a random place of a /32: offsets far above 2^64.
        (any::<u64>(), any::<u32>()).prop_map(|(hi, lo)| Shape {
            v6: true,
            base: (0xfd00_0002u128 << 96) | (u128::from(hi) << 32) | (u128::from(lo) & !0x7f),
            host_bits: 7,
        }),
    ]
}

/// A shape, range bounds and exclusions (offsets within the subnet; an exclusion is an
/// offset and its host bits), and taken offsets.
type Case = (Shape, Option<u8>, Option<u8>, Vec<(u8, u8)>, Vec<u8>);

/// A range over a shape with bounds, exclusions and taken addresses.
fn case() -> impl Strategy<Value = Case> {
    shape().prop_flat_map(|s| {
        let size = 1u16 << s.host_bits;
        let off = move || (0..size).prop_map(|v| v as u8);
        (
            Just(s),
            proptest::option::of(off()),
            proptest::option::of(off()),
            prop::collection::vec((off(), 0u8..=s.host_bits), 0..4),
            prop::collection::vec(off(), 0..40),
        )
    })
}

struct Built {
    range: PoolRange,
    candidates: Vec<IpAddr>,
    taken: BTreeSet<IpAddr>,
}

fn build(s: Shape, start: Option<u8>, end: Option<u8>, exclude: &[(u8, u8)], taken: &[u8]) -> Option<Built> {
    let size = 1u128 << s.host_bits;
    let (lo, hi) = (1u128, size - 2);
    let first = start.map_or(lo, |v| u128::from(v).clamp(lo, hi));
    let last = end.map_or(hi, |v| u128::from(v).clamp(lo, hi));
    let subnet = s.net(s.base, s.host_bits);
    let excl: Vec<IpNet> = exclude
        .iter()
        .map(|(o, bits)| {
            let block = 1u128 << bits;
            s.net(s.base + (u128::from(*o) / block) * block, *bits)
        })
        .collect();
    let range = PoolRange::new(
        subnet,
        start.map(|v| s.ip(s.base + u128::from(v))),
        end.map(|v| s.ip(s.base + u128::from(v))),
        &excl,
    );
    if last < first {
        assert!(range.is_err());
        return None;
    }
    let range = range.unwrap();
    let candidates =
        (first..=last).map(|o| s.ip(s.base + o)).filter(|ip| !excl.iter().any(|n| n.contains(ip))).collect();
    let taken = taken.iter().map(|o| s.ip(s.base + u128::from(*o))).collect();
    Some(Built { range, candidates, taken })
}

proptest! {
    #[test]
    fn nth_free_matches_the_model((s, start, end, exclude, taken) in case()) {
        let Some(b) = build(s, start, end, &exclude, &taken) else { return Ok(()) };
        let free: Vec<IpAddr> = b.candidates.iter().copied().filter(|ip| !b.taken.contains(ip)).collect();
        prop_assert_eq!(b.range.size(), b.candidates.len() as u128);
        prop_assert_eq!(b.range.free(&b.taken), free.len() as u128);
        for (k, want) in free.iter().enumerate() {
            prop_assert_eq!(b.range.nth_free(&b.taken, k as u128), Some(*want));
        }
        prop_assert_eq!(b.range.nth_free(&b.taken, free.len() as u128), None);
        for ip in &b.candidates {
            prop_assert!(b.range.offers(*ip));
        }
    }

    #[test]
    fn choose_offers_only_free_candidates((s, start, end, exclude, taken) in case(), attempt in 0u32..12, salt in any::<u64>()) {
        let Some(b) = build(s, start, end, &exclude, &taken) else { return Ok(()) };
        match b.range.choose(&b.taken, attempt, salt) {
            Some(ip) => {
                prop_assert!(b.candidates.contains(&ip));
                prop_assert!(!b.taken.contains(&ip));
                if attempt == 0 {
                    prop_assert_eq!(Some(ip), b.range.nth_free(&b.taken, 0));
                }
            }
            None => prop_assert_eq!(b.range.free(&b.taken), 0),
        }
    }

    /// Filling a range one choice at a time hands every candidate out exactly once.
    #[test]
    fn filling_gives_every_candidate_once((s, start, end, exclude, _t) in case(), salt in any::<u64>()) {
        let Some(b) = build(s, start, end, &exclude, &[]) else { return Ok(()) };
        let mut held = BTreeSet::new();
        let mut attempt = 0;
        while let Some(ip) = b.range.choose(&held, attempt % 6, salt.wrapping_add(u64::from(attempt))) {
            prop_assert!(held.insert(ip), "{} twice", ip);
            attempt += 1;
        }
        prop_assert_eq!(held.len(), b.candidates.len());
    }

    /// With overlapping ranges checked, one ADD never gets one address twice.
    #[test]
    fn choose_all_is_distinct_across_overlapping_ranges(bits_a in 2u8..6, bits_b in 2u8..6, attempt in 0u32..4, salt in any::<u64>()) {
        let a = PoolRange::new(format!("10.0.0.0/{}", 32 - bits_a).parse().unwrap(), None, None, &[]).unwrap();
        let b = PoolRange::new(format!("10.0.0.0/{}", 32 - bits_b).parse().unwrap(), None, None, &[]).unwrap();
        let mut reqs = vec![
            RangeRequest { range: &a, taken: BTreeSet::new(), held: None },
            RangeRequest { range: &b, taken: BTreeSet::new(), held: None },
        ];
        match choose_all(&mut reqs, true, attempt, salt) {
            Ok(ips) => prop_assert_ne!(ips[0], ips[1]),
            Err(i) => prop_assert_eq!(i, 1),
        }
    }
}
