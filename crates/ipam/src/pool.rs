//! Cluster-wide pools, as Whereabouts defines them: one CIDR, an inclusive window inside it,
//! and excluded subnets. Pure arithmetic on `u128`, so an IPv6 range of any size is usable
//! end to end (Whereabouts computes offsets in 64 bits and reaches only the first /65 of a
//! wider range). Who holds which address is the caller's business: these functions take
//! the taken addresses as a sorted set and answer which free address to offer.
//!
//! Allocation follows Whereabouts: the lowest free address of the window. Many allocators
//! racing on one pool would all pick that same address and all but one lose their
//! compare-and-swap, so [`PoolRange::choose`] spreads later attempts over a window of free
//! addresses that doubles with every attempt (a hash of the attachment and the attempt
//! picks one): uncontended allocations stay lowest-first, contended ones stop colliding.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::range::{canonical, from_u128, to_u128};

/// Why a range cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("{value:?} is not a CIDR or START-END/PREFIX range")]
    Syntax { value: String },
    #[error("{subnet} has no usable addresses (the network and last address are never given out)")]
    TooSmall { subnet: IpNet },
    #[error("{ip} is not in {subnet}")]
    Outside { ip: IpAddr, subnet: IpNet },
    #[error("range_end {end} is before range_start {start}")]
    EndBeforeStart { start: IpAddr, end: IpAddr },
    #[error("{what} {value} is not of the range's address family ({subnet})")]
    Family { what: &'static str, value: String, subnet: IpNet },
}

/// `range` as Whereabouts writes it: `10.1.2.0/24`, `10.1.2.7/24` (host bits ignored), or
/// `10.1.2.10-10.1.2.20/24` (an inclusive window; the prefix goes with the end address).
/// Returns the network and the window bounds the text carries.
pub fn parse_range(text: &str) -> Result<(IpNet, Option<IpAddr>, Option<IpAddr>), PoolError> {
    let syntax = || PoolError::Syntax { value: text.to_string() };
    let text = text.trim();
    match text.split_once('-') {
        Some((start, end)) => {
            let start: IpAddr = start.trim().parse().map_err(|_| syntax())?;
            let end: IpNet = end.trim().parse().map_err(|_| syntax())?;
            Ok((end.trunc(), Some(canonical(start)), Some(canonical(end.addr()))))
        }
        None => {
            let net: IpNet = text.parse().map_err(|_| syntax())?;
            Ok((net.trunc(), None, None))
        }
    }
}

/// An exclusion as Whereabouts accepts it: a CIDR, or a bare address (a /32 or /128).
pub fn parse_exclude(text: &str) -> Result<IpNet, PoolError> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| PoolError::Syntax { value: text.to_string() })
}

/// One range: its network, the inclusive window of candidates, and what is excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRange {
    subnet: IpNet,
    first: u128,
    last: u128,
    /// Sorted, merged, clipped to the window: inclusive `(start, end)` pairs.
    excluded: Vec<(u128, u128)>,
}

impl PoolRange {
    /// The window is `range_start..=range_end` clipped to the usable addresses (the network
    /// address and the last address are never candidates, as in Whereabouts, for IPv4 and
    /// IPv6 alike); a start or end on the network or last address is clipped too, since
    /// Whereabouts itself sets `range_start` to the network address. Bounds outside the
    /// subnet are refused rather than ignored. `exclude` holds CIDRs of the same family
    /// (others do not apply and are dropped) and, typically, the gateway as a single address.
    pub fn new(
        subnet: IpNet,
        range_start: Option<IpAddr>,
        range_end: Option<IpAddr>,
        exclude: &[IpNet],
    ) -> Result<PoolRange, PoolError> {
        let subnet = subnet.trunc();
        if subnet.max_prefix_len() - subnet.prefix_len() < 2 {
            return Err(PoolError::TooSmall { subnet });
        }
        let (lo, hi) = (to_u128(subnet.network()) + 1, to_u128(subnet.broadcast()) - 1);
        let bound = |ip: Option<IpAddr>, default: u128| -> Result<u128, PoolError> {
            let Some(ip) = ip.map(canonical) else { return Ok(default) };
            if ip.is_ipv4() != subnet.addr().is_ipv4() {
                let value = ip.to_string();
                return Err(PoolError::Family { what: "range bound", value, subnet });
            }
            if !subnet.contains(&ip) {
                return Err(PoolError::Outside { ip, subnet });
            }
            Ok(to_u128(ip).clamp(lo, hi))
        };
        let (first, last) = (bound(range_start, lo)?, bound(range_end, hi)?);
        if last < first {
            let (start, end) = (from_u128(first, subnet.addr()), from_u128(last, subnet.addr()));
            return Err(PoolError::EndBeforeStart { start, end });
        }
        let excluded = merge(
            exclude
                .iter()
                .filter(|n| n.addr().is_ipv4() == subnet.addr().is_ipv4())
                .map(|n| (to_u128(n.network()).max(first), to_u128(n.broadcast()).min(last)))
                .filter(|(a, b)| a <= b)
                .collect(),
        );
        Ok(PoolRange { subnet, first, last, excluded })
    }

    /// The network, as the pool is named by it.
    pub fn subnet(&self) -> IpNet {
        self.subnet
    }

    pub fn is_ipv6(&self) -> bool {
        self.subnet.addr().is_ipv6()
    }

    /// First and last candidate, inclusive.
    pub fn window(&self) -> (IpAddr, IpAddr) {
        (self.ip(self.first), self.ip(self.last))
    }

    /// `ip` with the pool's prefix length, as a CNI result carries it.
    pub fn address(&self, ip: IpAddr) -> IpNet {
        IpNet::new(ip, self.subnet.prefix_len()).unwrap_or_else(|_| IpNet::from(ip))
    }

    /// Whether `ip` is a candidate: inside the window and not excluded.
    pub fn offers(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.subnet.addr().is_ipv4() {
            return false;
        }
        let v = to_u128(ip);
        (self.first..=self.last).contains(&v) && !self.excluded.iter().any(|(a, b)| (*a..=*b).contains(&v))
    }

    /// How many candidates the window holds, exclusions taken off.
    pub fn size(&self) -> u128 {
        self.intervals().map(|(a, b)| b - a + 1).sum()
    }

    /// How many candidates are not in `taken`.
    pub fn free(&self, taken: &BTreeSet<IpAddr>) -> u128 {
        let held = taken.iter().filter(|ip| self.offers(**ip)).count() as u128;
        self.size().saturating_sub(held)
    }

    /// The free candidate with `skip` free candidates before it, lowest first.
    pub fn nth_free(&self, taken: &BTreeSet<IpAddr>, mut skip: u128) -> Option<IpAddr> {
        let taken = self.taken_values(taken);
        for (a, b) in self.intervals() {
            let mut cursor = a;
            for &t in taken.range(a..=b) {
                let gap = t - cursor;
                if skip < gap {
                    return Some(self.ip(cursor + skip));
                }
                skip -= gap;
                cursor = t + 1;
            }
            if cursor <= b {
                let gap = b - cursor + 1;
                if skip < gap {
                    return Some(self.ip(cursor + skip));
                }
                skip -= gap;
            }
        }
        None
    }

    /// The address to try on attempt `attempt` (0 first): the lowest free one, then one of
    /// the lowest `8 · 2^attempt` free ones, picked by `salt` (say, a hash of the attachment).
    pub fn choose(&self, taken: &BTreeSet<IpAddr>, attempt: u32, salt: u64) -> Option<IpAddr> {
        if attempt == 0 {
            return self.nth_free(taken, 0);
        }
        let free = self.free(taken);
        if free == 0 {
            return None;
        }
        let window = free.min(8u128 << attempt.min(100));
        self.nth_free(taken, u128::from(mix(salt, attempt)) % window)
    }

    fn ip(&self, v: u128) -> IpAddr {
        from_u128(v, self.subnet.addr())
    }

    fn taken_values(&self, taken: &BTreeSet<IpAddr>) -> BTreeSet<u128> {
        let v4 = self.subnet.addr().is_ipv4();
        taken.iter().map(|ip| canonical(*ip)).filter(|ip| ip.is_ipv4() == v4).map(to_u128).collect()
    }

    /// The window minus the exclusions, as inclusive intervals in order.
    fn intervals(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        let mut cursor = Some(self.first);
        let mut holes = self.excluded.iter();
        std::iter::from_fn(move || {
            loop {
                let start = cursor?;
                match holes.next() {
                    Some(&(a, b)) => {
                        cursor = b.checked_add(1).filter(|c| *c <= self.last);
                        if a > start {
                            return Some((start, a - 1));
                        }
                    }
                    None => {
                        cursor = None;
                        return Some((start, self.last));
                    }
                }
            }
        })
    }
}

impl fmt::Display for PoolRange {
    /// `first-last` of the window, the form Whereabouts' messages use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.window();
        write!(f, "{a}-{b}")
    }
}

/// One range of an ADD: the range, what is not free in it, and the address the attachment
/// already holds there (an ADD repeated, or a pod's new sandbox taking its address over).
#[derive(Debug, Clone)]
pub struct RangeRequest<'a> {
    pub range: &'a PoolRange,
    pub taken: BTreeSet<IpAddr>,
    pub held: Option<IpAddr>,
}

/// One address per request, in order; `None` names the first request with nothing free.
/// With `overlapping`, an address picked for one range is taken for the ranges after it,
/// so overlapping ranges never hand one address out twice in one ADD either.
pub fn choose_all(
    requests: &mut [RangeRequest<'_>],
    overlapping: bool,
    attempt: u32,
    salt: u64,
) -> Result<Vec<IpAddr>, usize> {
    let mut out = Vec::with_capacity(requests.len());
    for i in 0..requests.len() {
        let r = &requests[i];
        let ip = match r.held {
            Some(ip) => ip,
            None => r.range.choose(&r.taken, attempt, salt).ok_or(i)?,
        };
        if overlapping {
            for later in &mut requests[i + 1..] {
                later.taken.insert(ip);
            }
        }
        out.push(ip);
    }
    Ok(out)
}

/// Sorts and merges overlapping or touching intervals.
fn merge(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// splitmix64 of the salt and the attempt: cheap, well spread, no dependency.
fn mix(salt: u64, attempt: u32) -> u64 {
    let mut z = salt ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
