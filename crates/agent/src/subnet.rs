//! Pod subnets out of the cluster CIDR: pure choice of a free subnet of the node size. The
//! datastore's compare-and-swap (in [`crate::membership`]) makes the choice stick.

use std::net::IpAddr;

use ipnet::IpNet;

/// Why a pool cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("cluster CIDR {cidr} has host bits set (did you mean {}?)", .cidr.trunc())]
    NotNetwork { cidr: IpNet },
    #[error("node subnet size /{size} does not fit in cluster CIDR {cidr}")]
    TooBig { cidr: IpNet, size: u8 },
    #[error("node subnet size /{size} leaves no room for pods (at most /{max} for {family})")]
    TooSmall { size: u8, max: u8, family: &'static str },
    #[error("no free /{size} left in cluster CIDR {cidr}")]
    Exhausted { cidr: IpNet, size: u8 },
}

/// The node subnets of one address family: every `/size` inside `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    cluster: IpNet,
    size: u8,
}

impl SubnetPool {
    pub fn new(cluster: IpNet, size: u8) -> Result<SubnetPool, SubnetError> {
        if cluster.trunc() != cluster {
            return Err(SubnetError::NotNetwork { cidr: cluster });
        }
        // A pod subnet needs a gateway, a broadcast (IPv4) and at least one pod address.
        let (max, family) = match cluster {
            IpNet::V4(_) => (30, "IPv4"),
            IpNet::V6(_) => (126, "IPv6"),
        };
        if size > max {
            return Err(SubnetError::TooSmall { size, max, family });
        }
        if size < cluster.prefix_len() {
            return Err(SubnetError::TooBig { cidr: cluster, size });
        }
        Ok(SubnetPool { cluster, size })
    }

    pub fn cluster(&self) -> IpNet {
        self.cluster
    }

    pub fn size(&self) -> u8 {
        self.size
    }

    /// True when `net` is one of this pool's subnets.
    pub fn holds(&self, net: IpNet) -> bool {
        net.prefix_len() == self.size && net.trunc() == net && self.cluster.contains(&net)
    }

    /// True when `ip` is of this pool's family.
    pub fn same_family(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.cluster.addr().is_ipv4()
    }

    /// A free subnet: the first of `prefer` that is one of ours and free, else the lowest
    /// free one. `taken` may hold subnets of any size and family.
    pub fn pick(&self, taken: &[IpNet], prefer: &[IpNet]) -> Result<IpNet, SubnetError> {
        let free = |c: &IpNet| !taken.iter().any(|t| overlaps(c, t));
        if let Some(p) = prefer.iter().copied().find(|p| self.holds(*p) && free(p)) {
            return Ok(p);
        }
        self.lowest_free(taken).ok_or(SubnetError::Exhausted { cidr: self.cluster, size: self.size })
    }

    /// Walks the pool in order; a taken network skips the walk past its end, so the walk
    /// takes at most one step per taken network, whatever the pool's size.
    fn lowest_free(&self, taken: &[IpNet]) -> Option<IpNet> {
        let v4 = self.cluster.addr().is_ipv4();
        let bits = if v4 { 32 } else { 128 };
        let step = 1u128.checked_shl(bits - u32::from(self.size)).unwrap_or(u128::MAX);
        let last = to_int(self.cluster.broadcast());
        let mut cur = to_int(self.cluster.network());
        while cur <= last {
            let cand = IpNet::new(from_int(cur, v4), self.size).ok()?;
            let Some(end) = taken.iter().filter(|t| overlaps(&cand, t)).map(|t| to_int(t.broadcast())).max()
            else {
                return Some(cand);
            };
            // The first candidate after `end`, aligned to the subnet size.
            let next = end.checked_add(1)?;
            cur = next.checked_add(step - 1)? / step * step;
        }
        None
    }
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_int(v: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4(u32::try_from(v).unwrap_or(u32::MAX).into()) } else { IpAddr::V6(v.into()) }
}

/// Two networks share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn first_free_in_order() {
        let p = SubnetPool::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(p.pick(&[], &[]).unwrap(), net("10.244.0.0/24"));
        let taken = [net("10.244.0.0/24"), net("10.244.1.0/24"), net("10.244.3.0/24")];
        assert_eq!(p.pick(&taken, &[]).unwrap(), net("10.244.2.0/24"));
    }

    #[test]
    fn previous_subnet_is_preferred_when_free() {
        let p = SubnetPool::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(p.pick(&[], &[net("10.244.7.0/24")]).unwrap(), net("10.244.7.0/24"));
        // Taken, of another size, or outside the pool: ignored.
        let taken = [net("10.244.7.0/24")];
        assert_eq!(p.pick(&taken, &[net("10.244.7.0/24")]).unwrap(), net("10.244.0.0/24"));
        assert_eq!(p.pick(&[], &[net("10.244.7.0/25")]).unwrap(), net("10.244.0.0/24"));
        assert_eq!(p.pick(&[], &[net("10.9.7.0/24")]).unwrap(), net("10.244.0.0/24"));
    }

    #[test]
    fn overlapping_claims_of_other_sizes_count() {
        let p = SubnetPool::new(net("10.244.0.0/16"), 24).unwrap();
        let taken = [net("10.244.0.0/23"), net("10.244.2.128/25")];
        assert_eq!(p.pick(&taken, &[]).unwrap(), net("10.244.3.0/24"));
    }

    #[test]
    fn exhaustion_is_reported() {
        let p = SubnetPool::new(net("10.244.0.0/23"), 24).unwrap();
        let taken = [net("10.244.0.0/24"), net("10.244.1.0/24")];
        let e = p.pick(&taken, &[]).unwrap_err();
        assert_eq!(e.to_string(), "no free /24 left in cluster CIDR 10.244.0.0/23");
    }

    #[test]
    fn ipv6_pools() {
        let p = SubnetPool::new(net("fd00:10:244::/56"), 64).unwrap();
        assert_eq!(p.pick(&[net("fd00:10:244::/64")], &[]).unwrap(), net("fd00:10:244:1::/64"));
        assert!(p.same_family("fd00::1".parse().unwrap()));
        assert!(!p.same_family("10.0.0.1".parse().unwrap()));
        // A huge pool shadowed by one foreign claim still answers quickly.
        let huge = SubnetPool::new(net("fd00::/16"), 64).unwrap();
        assert_eq!(huge.pick(&[net("fd00::/17")], &[]).unwrap(), net("fd00:8000::/64"));
    }

    #[test]
    fn bad_pools_are_rejected() {
        assert!(matches!(SubnetPool::new(net("10.244.1.0/16"), 24), Err(SubnetError::NotNetwork { .. })));
        assert!(matches!(SubnetPool::new(net("10.244.0.0/16"), 8), Err(SubnetError::TooBig { .. })));
        assert!(matches!(SubnetPool::new(net("10.244.0.0/16"), 31), Err(SubnetError::TooSmall { .. })));
        assert!(SubnetPool::new(net("10.244.0.0/24"), 24).is_ok());
    }

    proptest! {
        /// Nodes joining one after another never get overlapping subnets, and each gets a
        /// subnet of the pool until it is full.
        #[test]
        fn sequential_allocations_are_unique(
            prefix in 20u8..=26,
            size_extra in 0u8..=4,
            joins in 1usize..40,
            prefer_idx in proptest::collection::vec(0u32..64, 0..40),
        ) {
            let size = (prefix + size_extra).min(30);
            let cluster = IpNet::new("10.0.0.0".parse().unwrap(), prefix).unwrap().trunc();
            let pool = SubnetPool::new(cluster, size).unwrap();
            let capacity = 1usize << (size - prefix);
            let all: Vec<IpNet> = cluster.subnets(size).unwrap().collect();
            let mut taken: Vec<IpNet> = Vec::new();
            for i in 0..joins {
                let prefer: Vec<IpNet> =
                    prefer_idx.get(i).map(|k| all[*k as usize % all.len()]).into_iter().collect();
                match pool.pick(&taken, &prefer) {
                    Ok(n) => {
                        prop_assert!(pool.holds(n));
                        prop_assert!(!taken.iter().any(|t| overlaps(t, &n)));
                        if let Some(p) = prefer.first().filter(|p| !taken.contains(p)) {
                            prop_assert_eq!(n, *p);
                        }
                        taken.push(n);
                    }
                    Err(_) => prop_assert_eq!(taken.len(), capacity),
                }
            }
            prop_assert_eq!(taken.len(), joins.min(capacity));
        }
    }
}
