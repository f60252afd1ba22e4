//! Reading reservations: one IPAM network in one listing (what every operation starts
//! from), and every pool of the cluster (for `twill cluster get ippools` and the agent's
//! reconciler). A record that does not decode still holds its address — the address is in
//! its key — so garbage never makes an address look free.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{IpPoolError, IpReservation};
use crate::layout::{IPAM, UNNAMED_NETWORK, ipam_network_prefix};
use crate::record::decode;
use crate::store::{Datastore, Entry};

/// A reservation with the revision of its key, for compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub mod_revision: u64,
    pub record: IpReservation,
}

/// Everything of one IPAM network.
#[derive(Debug, Clone, Default)]
pub struct NetworkView {
    pub network: String,
    /// `ips/` keys, sorted by key.
    pub reservations: Vec<Stored>,
    /// `claims/` keys by address.
    pub claims: BTreeMap<IpAddr, Stored>,
    /// Keys that did not decode, with the range (for `ips/` keys) and address they name.
    pub unreadable: Vec<(String, Option<IpNet>, IpAddr)>,
}

impl NetworkView {
    /// The reservations of the pool `range`.
    pub fn pool(&self, range: IpNet) -> impl Iterator<Item = &Stored> {
        self.reservations.iter().filter(move |s| s.record.range == range)
    }

    /// Addresses not free in `range`: its own reservations, and with `overlapping` every
    /// address claimed anywhere in the network.
    pub fn taken(&self, range: IpNet, overlapping: bool) -> BTreeSet<IpAddr> {
        let mut t: BTreeSet<IpAddr> = self.pool(range).map(|s| s.record.ip).collect();
        for (_, r, ip) in &self.unreadable {
            if overlapping || *r == Some(range) {
                t.insert(*ip);
            }
        }
        if overlapping {
            t.extend(self.claims.keys().copied());
        }
        t
    }

    /// The reservation of `range` that belongs to the attachment: the same container and
    /// interface, else (Whereabouts' rule) the same pod and interface.
    pub fn held_by(&self, range: IpNet, pod: &str, container_id: &str, ifname: &str) -> Option<&Stored> {
        let mut pool = self.pool(range);
        let exact = pool.find(|s| s.record.is_for(container_id, ifname));
        exact.or_else(|| {
            self.pool(range)
                .find(|s| !pod.is_empty() && s.record.holder.pod == pod && s.record.holder.ifname == ifname)
        })
    }

    /// Every reservation of the attachment, in any pool of the network.
    pub fn of_attachment(&self, container_id: &str, ifname: &str) -> Vec<&Stored> {
        self.reservations.iter().filter(|s| s.record.is_for(container_id, ifname)).collect()
    }

    /// The claim of `ip` when it names the same attachment as `s` (else it is someone
    /// else's and must stay).
    pub fn claim_of(&self, s: &Stored) -> Option<&Stored> {
        self.claims.get(&s.record.ip).filter(|c| {
            c.record.range == s.record.range
                && c.record.is_for(&s.record.holder.container_id, &s.record.holder.ifname)
        })
    }
}

/// `ips/CIDR/IP` or `claims/IP` below a network prefix.
enum KeyKind {
    Reservation(IpNet, IpAddr),
    Claim(IpAddr),
}

fn parse_key(rest: &str) -> Option<KeyKind> {
    if let Some(r) = rest.strip_prefix("ips/") {
        let (cidr, ip) = r.split_once('/')?;
        let (addr, len) = cidr.rsplit_once('-')?;
        let net = IpNet::new(addr.parse().ok()?, len.parse().ok()?).ok()?;
        return Some(KeyKind::Reservation(net, ip.parse().ok()?));
    }
    rest.strip_prefix("claims/").and_then(|ip| ip.parse().ok()).map(KeyKind::Claim)
}

fn stored(e: &Entry) -> Option<Stored> {
    let record: IpReservation = decode(e).ok()?;
    Some(Stored { key: e.key.clone(), mod_revision: e.mod_revision, record })
}

/// Sorts the entries under one network prefix into a view.
fn view_of(network: &str, prefix: &str, entries: &[Entry]) -> NetworkView {
    let mut v = NetworkView { network: network.to_string(), ..Default::default() };
    for e in entries {
        let Some(kind) = e.key.strip_prefix(prefix).and_then(parse_key) else { continue };
        match (kind, stored(e)) {
            (KeyKind::Reservation(..), Some(s)) => v.reservations.push(s),
            (KeyKind::Claim(ip), Some(s)) => {
                v.claims.insert(ip, s);
            }
            (KeyKind::Reservation(net, ip), None) => v.unreadable.push((e.key.clone(), Some(net), ip)),
            (KeyKind::Claim(ip), None) => v.unreadable.push((e.key.clone(), None, ip)),
        }
    }
    v
}

/// One IPAM network, read in one round trip.
pub fn network_view(store: &dyn Datastore, network: &str) -> Result<NetworkView, IpPoolError> {
    let prefix = ipam_network_prefix(network);
    let listing = store.list(&prefix)?;
    Ok(view_of(network, &prefix, &listing.entries))
}

/// One pool and its reservations, as `twill cluster get ippools` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    pub network: String,
    pub range: IpNet,
    pub reservations: Vec<Stored>,
    /// Keys of this pool that did not decode.
    pub unreadable: Vec<String>,
}

/// Every network of the cluster, by name (`""` for the unnamed one).
pub fn networks(store: &dyn Datastore) -> Result<Vec<NetworkView>, IpPoolError> {
    let listing = store.list(IPAM)?;
    let mut by_net: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in listing.entries {
        if let Some((net, _)) = e.key.strip_prefix(IPAM).and_then(|r| r.split_once('/')) {
            by_net.entry(net.to_string()).or_default().push(e.clone());
        }
    }
    Ok(by_net
        .into_iter()
        .map(|(net, entries)| {
            let name = if net == UNNAMED_NETWORK { String::new() } else { net };
            let prefix = ipam_network_prefix(&name);
            view_of(&name, &prefix, &entries)
        })
        .collect())
}

/// Every pool that holds a reservation, sorted by network and range.
pub fn pools(store: &dyn Datastore) -> Result<Vec<PoolView>, IpPoolError> {
    let mut out: BTreeMap<(String, IpNet), PoolView> = BTreeMap::new();
    for net in networks(store)? {
        for s in net.reservations {
            let k = (net.network.clone(), s.record.range);
            let pool = out.entry(k).or_insert_with(|| PoolView {
                network: net.network.clone(),
                range: s.record.range,
                reservations: Vec::new(),
                unreadable: Vec::new(),
            });
            pool.reservations.push(s);
        }
        for (key, range, _) in net.unreadable {
            let Some(range) = range else { continue };
            let k = (net.network.clone(), range);
            let pool = out.entry(k).or_insert_with(|| PoolView {
                network: net.network.clone(),
                range,
                reservations: Vec::new(),
                unreadable: Vec::new(),
            });
            pool.unreadable.push(key);
        }
    }
    let mut pools: Vec<PoolView> = out.into_values().collect();
    for p in &mut pools {
        p.reservations.sort_by_key(|s| s.record.ip);
    }
    Ok(pools)
}
