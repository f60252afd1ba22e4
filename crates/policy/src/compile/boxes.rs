//! What one pod may exchange, as disjoint boxes of (peer address range × port range) per
//! protocol. nft rejects overlapping elements in a concatenated interval set ("File exists"),
//! while policy rules overlap freely; a sweep over the peer boundaries turns the union of all
//! rules' boxes into disjoint ones.

use std::collections::BTreeMap;

use super::intervals::merge;
use crate::model::Protocol;

/// An inclusive range of address values (IPv4 or IPv6 as u128).
pub type AddrRange = (u128, u128);
/// An inclusive port range.
pub type PortRange = (u16, u16);

/// The union of boxes, per protocol.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boxes {
    by_proto: BTreeMap<Protocol, Vec<(AddrRange, PortRange)>>,
}

impl Boxes {
    pub fn add(&mut self, proto: Protocol, peers: AddrRange, ports: PortRange) {
        self.by_proto.entry(proto).or_default().push((peers, ports));
    }

    /// Disjoint boxes covering exactly the union, sorted by protocol, then peers, then ports.
    pub fn disjoint(&self) -> Vec<(Protocol, AddrRange, PortRange)> {
        let mut out = Vec::new();
        for (proto, boxes) in &self.by_proto {
            out.extend(sweep(boxes).into_iter().map(|(a, p)| (*proto, a, p)));
        }
        out
    }

    /// [`Boxes::disjoint`] minus the peers in `except` (sorted, disjoint): boxes of peers that
    /// are allowed everything anyway are redundant.
    pub fn disjoint_except(&self, except: &[AddrRange]) -> Vec<(Protocol, AddrRange, PortRange)> {
        let mut out = Vec::new();
        for (proto, peers, ports) in self.disjoint() {
            out.extend(subtract_all(peers, except).into_iter().map(|p| (proto, p, ports)));
        }
        out
    }
}

/// `range` minus every range of `cuts` (sorted and disjoint).
fn subtract_all((mut lo, hi): AddrRange, cuts: &[AddrRange]) -> Vec<AddrRange> {
    let mut out = Vec::new();
    for &(cut_lo, cut_hi) in cuts {
        if cut_hi < lo || cut_lo > hi {
            continue;
        }
        if cut_lo > lo {
            out.push((lo, cut_lo - 1));
        }
        match cut_hi.checked_add(1) {
            Some(next) if next <= hi => lo = next,
            _ => return out,
        }
    }
    out.push((lo, hi));
    out
}

/// Cuts the peer axis at every box edge; each slice gets the merged port ranges of the boxes
/// over it; neighbouring slices with the same ports join again.
fn sweep(boxes: &[(AddrRange, PortRange)]) -> Vec<(AddrRange, PortRange)> {
    // Events: a box starts at its first address and ends after its last (None: after the top
    // of the address space).
    let mut cuts: Vec<u128> =
        boxes.iter().flat_map(|((lo, hi), _)| [Some(*lo), hi.checked_add(1)]).flatten().collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut starts: Vec<&(AddrRange, PortRange)> = boxes.iter().collect();
    starts.sort_by_key(|((lo, _), _)| *lo);
    let mut next = 0;
    let mut active: Vec<&(AddrRange, PortRange)> = Vec::new();
    let mut slices: Vec<(AddrRange, Vec<PortRange>)> = Vec::new();
    for (i, &at) in cuts.iter().enumerate() {
        while next < starts.len() && starts[next].0.0 <= at {
            active.push(starts[next]);
            next += 1;
        }
        active.retain(|((_, hi), _)| *hi >= at);
        if active.is_empty() {
            continue;
        }
        let end = cuts.get(i + 1).map_or(u128::MAX, |c| c - 1);
        let ports = merge(active.iter().map(|(_, p)| *p).collect());
        match slices.last_mut() {
            Some(((_, last_hi), last_ports))
                if *last_ports == ports && last_hi.checked_add(1) == Some(at) =>
            {
                *last_hi = end;
            }
            _ => slices.push(((at, end), ports)),
        }
    }
    slices.into_iter().flat_map(|(a, ports)| ports.into_iter().map(move |p| (a, p))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Protocol::{Tcp, Udp};

    fn boxes(items: &[(Protocol, AddrRange, PortRange)]) -> Vec<(Protocol, AddrRange, PortRange)> {
        let mut b = Boxes::default();
        for (proto, a, p) in items {
            b.add(*proto, *a, *p);
        }
        b.disjoint()
    }

    /// Every point of every input box is covered exactly once, and nothing else is.
    fn check_exact(input: &[(Protocol, AddrRange, PortRange)]) {
        let out = boxes(input);
        for proto in [Tcp, Udp] {
            for a in 0..40u128 {
                for p in 0..40u16 {
                    let inside = |(pr, (alo, ahi), (plo, phi)): &(Protocol, AddrRange, PortRange)| {
                        *pr == proto && (*alo..=*ahi).contains(&a) && (*plo..=*phi).contains(&p)
                    };
                    let want = input.iter().any(inside);
                    let covering = out.iter().filter(|b| inside(b)).count();
                    assert_eq!(covering, usize::from(want), "{proto} {a} {p} in {out:?}");
                }
            }
        }
    }

    #[test]
    fn overlapping_boxes_become_disjoint() {
        let input = [
            (Tcp, (0, 10), (80, 90)),
            (Tcp, (5, 20), (85, 95)),
            (Tcp, (30, 30), (1, 1)),
            (Tcp, (0, 10), (80, 80)),
            (Udp, (3, 3), (53, 53)),
            (Udp, (2, 4), (53, 53)),
        ];
        check_exact(&input);
        assert_eq!(
            boxes(&input),
            [
                (Tcp, (0, 4), (80, 90)),
                (Tcp, (5, 10), (80, 95)),
                (Tcp, (11, 20), (85, 95)),
                (Tcp, (30, 30), (1, 1)),
                (Udp, (2, 4), (53, 53)),
            ]
        );
    }

    #[test]
    fn neighbours_with_the_same_ports_join() {
        let input = [(Tcp, (0, 4), (80, 80)), (Tcp, (5, 9), (80, 80)), (Tcp, (11, 12), (80, 80))];
        check_exact(&input);
        assert_eq!(boxes(&input), [(Tcp, (0, 9), (80, 80)), (Tcp, (11, 12), (80, 80))]);
    }

    #[test]
    fn nested_and_crossing_boxes() {
        check_exact(&[(Tcp, (0, 39), (10, 12)), (Tcp, (10, 12), (0, 39)), (Tcp, (11, 11), (11, 11))]);
        check_exact(&[(Tcp, (1, 30), (5, 6)), (Tcp, (4, 8), (7, 9)), (Tcp, (6, 35), (1, 39))]);
    }

    #[test]
    fn peers_allowed_everything_are_cut_out() {
        let mut b = Boxes::default();
        b.add(Tcp, (0, 100), (80, 80));
        b.add(Udp, (5, 5), (53, 53));
        let out = b.disjoint_except(&[(0, 9), (20, 29), (100, 200)]);
        assert_eq!(out, [(Tcp, (10, 19), (80, 80)), (Tcp, (30, 99), (80, 80))]);
        assert_eq!(b.disjoint_except(&[(0, u128::MAX)]), []);
        assert_eq!(b.disjoint_except(&[]), b.disjoint());
    }

    #[test]
    fn the_top_of_the_address_space() {
        let top = u128::MAX;
        let out = boxes(&[(Tcp, (0, top), (1, 1)), (Tcp, (top, top), (2, 2))]);
        assert_eq!(out, [(Tcp, (0, top - 1), (1, 1)), (Tcp, (top, top), (1, 2))]);
    }
}
