//! DEL, CHECK and GC over a [`Store`].

use std::collections::HashSet;
use std::net::IpAddr;

use crate::allocate::Attachment;
use crate::error::Error;
use crate::range::canonical;
use crate::store::{Owner, Reservation, Store};

/// Free every address of (`id`, `ifname`); returns them, sorted.
///
/// As the reference's `ReleaseByID`: records for exactly this attachment are freed; only when
/// there are none, legacy records holding just the container id are freed instead. Nothing
/// to free is not an error (DEL is idempotent). Best-effort: every address is tried, and
/// the failures are reported together.
pub fn release(store: &mut dyn Store, id: &str, ifname: &str) -> Result<Vec<IpAddr>, Error> {
    let who = Attachment::new(id, ifname)?;
    let all = store.list()?;
    let exact: Vec<IpAddr> =
        all.iter().filter(|r| r.owner.is_attachment(who.id, who.ifname)).map(|r| r.ip).collect();
    let targets = if exact.is_empty() {
        all.iter().filter(|r| r.owner.is_legacy_of(who.id)).map(|r| r.ip).collect()
    } else {
        exact
    };
    free_all(store, targets)
}

/// Verify the attachment's reservations.
///
/// With `ips` empty this is the reference's CHECK: at least one address must be recorded
/// for the attachment (or, failing that, a legacy record for its id). Otherwise every
/// address in `ips` must be recorded for the attachment (legacy records of its id count).
pub fn check(store: &dyn Store, id: &str, ifname: &str, ips: &[IpAddr]) -> Result<(), Error> {
    let who = Attachment::new(id, ifname)?;
    let all = store.list()?;
    if ips.is_empty() {
        if all.iter().any(|r| who.holds(r)) {
            return Ok(());
        }
        let (id, ifname) = (who.id.to_string(), who.ifname.to_string());
        return Err(Error::NothingReserved { id, ifname });
    }
    for ip in ips.iter().copied().map(canonical) {
        check_one(&all, who, ip)?;
    }
    Ok(())
}

fn check_one(all: &[Reservation], who: Attachment<'_>, ip: IpAddr) -> Result<(), Error> {
    let (id, ifname) = (who.id.to_string(), who.ifname.to_string());
    match all.iter().find(|r| r.ip == ip) {
        None => Err(Error::NotReserved { ip, id, ifname }),
        Some(r) if who.holds(r) => Ok(()),
        Some(r) => Err(Error::ReservedByOther { ip, owner: r.owner.to_string(), id, ifname }),
    }
}

/// Free every reservation not held by an attachment in `valid` (container id, ifname);
/// returns the freed addresses, sorted.
///
/// Legacy records are kept when their container id appears in `valid` with any ifname;
/// unreadable records are always freed. The store also drops leftovers of interrupted
/// writes; its bookkeeping (`lock`, `last_reserved_ip.*`) is never touched. Best-effort.
pub fn gc(store: &mut dyn Store, valid: &[(String, String)]) -> Result<Vec<IpAddr>, Error> {
    let pairs: HashSet<(&str, &str)> =
        valid.iter().map(|(id, ifname)| (id.trim(), ifname.as_str())).collect();
    let ids: HashSet<&str> = pairs.iter().map(|(id, _)| *id).collect();
    let stale: Vec<IpAddr> = store
        .list()?
        .into_iter()
        .filter(|r| match &r.owner {
            Owner::Attachment { id, ifname } => !pairs.contains(&(id.as_str(), ifname.as_str())),
            Owner::Legacy { id } => !ids.contains(id.as_str()),
            Owner::Unreadable { .. } => true,
        })
        .map(|r| r.ip)
        .collect();
    let incomplete = store.discard_incomplete();
    let freed = free_all(store, stale);
    match (freed, incomplete) {
        (Ok(freed), Ok(_)) => Ok(freed),
        (Ok(_), Err(e)) => Err(e),
        (Err(Error::Many(mut errors)), Err(e)) => {
            errors.push(e);
            Err(Error::Many(errors))
        }
        (Err(e), _) => Err(e),
    }
}

fn free_all(store: &mut dyn Store, mut ips: Vec<IpAddr>) -> Result<Vec<IpAddr>, Error> {
    ips.sort();
    let mut freed = Vec::with_capacity(ips.len());
    let mut errors = Vec::new();
    for ip in ips {
        match store.release(ip) {
            Ok(true) => freed.push(ip),
            Ok(false) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(freed) } else { Err(Error::Many(errors)) }
}

#[cfg(test)]
#[path = "release_tests.rs"]
mod tests;
