//! ADD: one address per range set, all or nothing.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::candidates::Candidates;
use crate::config::IpamConfig;
use crate::error::Error;
use crate::range::RangeSet;
use crate::request;
use crate::store::{Reservation, Store};

/// One address handed out, in the shape of a CNI result's `ips[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The address with its range's prefix length, e.g. `10.1.2.3/24`.
    pub address: IpNet,
    /// The range's gateway; host-local always has one (default: network + 1).
    pub gateway: IpAddr,
    /// Index of the range set the address came from.
    pub range_set: usize,
}

/// The attachment an operation is for; the id is trimmed as the reference trims it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attachment<'a> {
    pub(crate) id: &'a str,
    pub(crate) ifname: &'a str,
}

impl<'a> Attachment<'a> {
    /// Validate: neither part empty, and no line break that would corrupt the file format.
    pub(crate) fn new(id: &'a str, ifname: &'a str) -> Result<Attachment<'a>, Error> {
        let id = id.trim();
        check_part("container id", id)?;
        check_part("ifname", ifname)?;
        Ok(Attachment { id, ifname })
    }

    /// Whether `r` belongs to this attachment: recorded for it, or a legacy record of its id.
    pub(crate) fn holds(&self, r: &Reservation) -> bool {
        r.owner.is_attachment(self.id, self.ifname) || r.owner.is_legacy_of(self.id)
    }
}

fn check_part(what: &'static str, value: &str) -> Result<(), Error> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.contains(['\r', '\n', '\0']) {
        "contains a line break or NUL"
    } else {
        return Ok(());
    };
    Err(Error::Attachment { what, value: value.to_string(), reason })
}

/// Allocate one address from every range set of `conf` for (`id`, `ifname`), in range set
/// order. `requested` addresses are served by the set containing them; the others get the
/// next free address in round-robin order. On any failure, every address reserved by this
/// call is released again and the error names the failing range set.
pub fn allocate(
    store: &mut dyn Store,
    conf: &IpamConfig,
    id: &str,
    ifname: &str,
    requested: &[IpAddr],
) -> Result<Vec<Allocation>, Error> {
    let who = Attachment::new(id, ifname)?;
    let plan = request::assign(&conf.range_sets, requested)?;
    let existing = store.list()?;
    let mut taken: HashSet<IpAddr> = existing.iter().map(|r| r.ip).collect();
    let mut done: Vec<Allocation> = Vec::with_capacity(plan.len());
    for (index, (set, wanted)) in conf.range_sets.iter().zip(plan).enumerate() {
        let step = SetStep { set, index, who, existing: &existing, taken: &taken };
        let result = match wanted {
            Some(ip) => step.requested(store, ip),
            None => step.next_free(store),
        };
        match result {
            Ok(alloc) => {
                taken.insert(alloc.address.addr());
                done.push(alloc);
            }
            Err(source) => return Err(rollback(store, &done, index, source)),
        }
    }
    Ok(done)
}

/// STATUS: whether ADD could be served now, reserving nothing. Every range set must have an
/// address the round-robin walk would offer (its gateways are never offered) that nobody
/// holds; otherwise the error ADD would report for the first full set (kind `Exhausted`).
pub fn check_available(store: &dyn Store, conf: &IpamConfig) -> Result<(), Error> {
    let taken: HashSet<IpAddr> = store.list()?.into_iter().map(|r| r.ip).collect();
    for (index, set) in conf.range_sets.iter().enumerate() {
        // Lazy: stops at the first free address, after at most one step per reservation.
        if !Candidates::new(set, None).any(|(_, ip)| !taken.contains(&ip)) {
            let full = Error::Exhausted { range_set: set.to_string() };
            return Err(Error::RangeSet { index, source: Box::new(full) });
        }
    }
    Ok(())
}

/// Release what this call reserved; the original error comes first so its kind is kept.
fn rollback(store: &mut dyn Store, done: &[Allocation], index: usize, source: Error) -> Error {
    let failed = Error::RangeSet { index, source: Box::new(source) };
    let mut errors: Vec<Error> = done.iter().filter_map(|a| store.release(a.address.addr()).err()).collect();
    if errors.is_empty() {
        return failed;
    }
    errors.insert(0, failed);
    Error::Many(errors)
}

/// Everything one range set's allocation looks at.
struct SetStep<'a> {
    set: &'a RangeSet,
    index: usize,
    who: Attachment<'a>,
    existing: &'a [Reservation],
    taken: &'a HashSet<IpAddr>,
}

impl SetStep<'_> {
    /// A specific address: it must not be the gateway and must be free. Like the reference,
    /// this path does not refuse an attachment that already holds an address in the set.
    fn requested(&self, store: &mut dyn Store, ip: IpAddr) -> Result<Allocation, Error> {
        let unavailable = || Error::Unavailable { ip, range_set: self.set.to_string() };
        let range = self.set.range_for(ip).ok_or_else(unavailable)?;
        if ip == range.gateway() {
            return Err(Error::RequestedGateway { ip });
        }
        if self.taken.contains(&ip) || !self.reserve(store, ip)? {
            return Err(unavailable());
        }
        Ok(Allocation { address: range.address(ip), gateway: range.gateway(), range_set: self.index })
    }

    /// The next free address after the set's last reserved one. An attachment that already
    /// holds an address in this set is refused (the spec forbids duplicate allocation).
    fn next_free(&self, store: &mut dyn Store) -> Result<Allocation, Error> {
        let held = self.existing.iter().find(|r| self.set.contains(r.ip) && self.who.holds(r));
        if let Some(r) = held {
            let id = self.who.id.to_string();
            return Err(Error::Duplicate { ip: r.ip, id });
        }
        // An unreadable cursor only costs round-robin order, as in the reference.
        let last = store.last_reserved(self.index).ok().flatten();
        for (range_index, ip) in Candidates::new(self.set, last) {
            if self.taken.contains(&ip) || !self.reserve(store, ip)? {
                continue;
            }
            let range = &self.set.ranges()[range_index];
            return Ok(Allocation {
                address: range.address(ip),
                gateway: range.gateway(),
                range_set: self.index,
            });
        }
        Err(Error::Exhausted { range_set: self.set.to_string() })
    }

    /// Reserve `ip` and move the set's cursor to it; a failed cursor write undoes the
    /// reservation so a failed ADD leaves nothing behind.
    fn reserve(&self, store: &mut dyn Store, ip: IpAddr) -> Result<bool, Error> {
        if !store.reserve(ip, self.who.id, self.who.ifname)? {
            return Ok(false);
        }
        if let Err(err) = store.set_last_reserved(self.index, ip) {
            return Err(match store.release(ip) {
                Ok(_) => err,
                Err(undo) => Error::Many(vec![err, undo]),
            });
        }
        Ok(true)
    }
}

#[cfg(test)]
#[path = "allocate_tests.rs"]
mod tests;
