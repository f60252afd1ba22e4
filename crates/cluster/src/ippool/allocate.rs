//! ADD: one address per range, all in one compare-and-swap transaction.
//!
//! Each attempt reads the network in one listing, plans (an address the attachment already
//! holds is kept; others are picked by `ipam::choose_all`), and writes every new
//! reservation on the condition that its keys are still absent (or, for a takeover, still
//! at the revision read). A lost race reads again; later attempts spread over more free
//! addresses so concurrent allocators stop colliding. A transaction whose outcome is
//! unknown (the etcd leader died with it in flight) is followed by one more read: if the
//! reservation is there it is this attachment's, found by the plan as held. A datastore
//! that refuses connections fails the ADD at once (it is down: say so); one that does not
//! answer in time (overloaded, or a member cut off) is asked again until the deadline.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipam::{PoolRange, RangeRequest, choose_all};

use super::view::{NetworkView, network_view};
use super::{Holder, IpPoolError, IpReservation, Stored, check_network_name, now_secs};
use crate::record::encode;
use crate::store::{Compare, Datastore, Op, Txn};

/// What one ADD asks for.
#[derive(Debug, Clone)]
pub struct AllocRequest<'a> {
    /// `network_name`; empty for the unnamed network.
    pub network: &'a str,
    pub ranges: &'a [PoolRange],
    /// Whereabouts' `enable_overlapping_ranges`.
    pub overlapping: bool,
    pub holder: Holder,
    /// Give up (with [`IpPoolError::Contended`]) when this passes.
    pub deadline: Instant,
}

/// The addresses of the attachment, one per range in order.
pub fn allocate(store: &dyn Datastore, req: &AllocRequest<'_>) -> Result<Vec<IpAddr>, IpPoolError> {
    check_network_name(req.network)?;
    check_distinct(req.ranges)?;
    let salt = salt(&req.holder);
    let mut attempt = 0u32;
    let mut unsure = false;
    loop {
        let in_time = Instant::now() < req.deadline;
        let view = match network_view(store, req.network) {
            Ok(v) => v,
            Err(e) if e.is_timeout() && in_time => {
                backoff(attempt, salt);
                continue;
            }
            Err(e) => return Err(e),
        };
        let (ips, txn) = plan(&view, req, attempt, salt)?;
        if txn.ops.is_empty() {
            return Ok(ips);
        }
        match store.txn(&txn) {
            Ok(true) => return Ok(ips),
            Ok(false) => {}
            // Unknown outcome: the next read tells. Refused twice in a row is an outage.
            Err(e) if e.is_timeout() && in_time => {}
            Err(e) if e.is_unavailable() && !unsure => unsure = true,
            Err(e) => return Err(e.into()),
        }
        attempt += 1;
        if Instant::now() >= req.deadline {
            return Err(IpPoolError::Contended { attempts: attempt });
        }
        backoff(attempt, salt);
    }
}

/// A short pause that grows with the attempts and differs between allocators.
fn backoff(attempt: u32, salt: u64) {
    let spread = u64::from(attempt.min(8)) * 500;
    let micros = (salt.rotate_left(attempt) % spread.max(1)) + 100;
    std::thread::sleep(Duration::from_micros(micros));
}

fn salt(h: &Holder) -> u64 {
    let mut s = DefaultHasher::new();
    (&h.container_id, &h.ifname, &h.node, std::process::id()).hash(&mut s);
    s.finish()
}

fn check_distinct(ranges: &[PoolRange]) -> Result<(), IpPoolError> {
    for (i, r) in ranges.iter().enumerate() {
        if ranges[i + 1..].iter().any(|o| o.subnet() == r.subnet()) {
            return Err(IpPoolError::DuplicateRange { range: r.subnet() });
        }
    }
    Ok(())
}

/// The addresses and the transaction that reserves what is not reserved yet.
fn plan(
    view: &NetworkView,
    req: &AllocRequest<'_>,
    attempt: u32,
    salt: u64,
) -> Result<(Vec<IpAddr>, Txn), IpPoolError> {
    let h = &req.holder;
    let held: Vec<Option<&Stored>> =
        req.ranges.iter().map(|r| view.held_by(r.subnet(), &h.pod, &h.container_id, &h.ifname)).collect();
    let mut requests: Vec<RangeRequest<'_>> = req
        .ranges
        .iter()
        .zip(&held)
        .map(|(r, s)| RangeRequest {
            range: r,
            taken: view.taken(r.subnet(), req.overlapping),
            held: s.map(|s| s.record.ip),
        })
        .collect();
    let ips = choose_all(&mut requests, req.overlapping, attempt, salt).map_err(|i| {
        IpPoolError::Exhausted { network: req.network.to_string(), range: req.ranges[i].to_string() }
    })?;
    let mut txn = Txn::default();
    let since = now_secs();
    for ((range, ip), old) in req.ranges.iter().zip(&ips).zip(&held) {
        let record = IpReservation {
            ip: *ip,
            network: req.network.to_string(),
            range: range.subnet(),
            holder: h.clone(),
            since,
        };
        match old {
            Some(s) if s.record.is_for(&h.container_id, &h.ifname) => {}
            Some(s) => take_over(&mut txn, view, s, record)?,
            None => reserve(&mut txn, record, req.overlapping)?,
        }
    }
    Ok((ips, txn))
}

fn put(txn: &mut Txn, key: String, record: &IpReservation) -> Result<(), IpPoolError> {
    let value = encode(&key, record)?;
    txn.ops.push(Op::Put { key, value, lease: None });
    Ok(())
}

/// A new address: its key (and claim) must still be absent.
fn reserve(txn: &mut Txn, record: IpReservation, overlapping: bool) -> Result<(), IpPoolError> {
    let key = record.key();
    txn.compare.push((key.clone(), Compare::Absent));
    put(txn, key, &record)?;
    if overlapping {
        let claim = record.claim_key();
        txn.compare.push((claim.clone(), Compare::Absent));
        put(txn, claim, &record)?;
    }
    Ok(())
}

/// The pod's new sandbox takes its address over from the old container (Whereabouts keys
/// an allocation by pod and interface): the reservation, and its claim when it has one,
/// are rewritten if they are still as read.
fn take_over(
    txn: &mut Txn,
    view: &NetworkView,
    old: &Stored,
    record: IpReservation,
) -> Result<(), IpPoolError> {
    txn.compare.push((old.key.clone(), Compare::ModRevision(old.mod_revision)));
    put(txn, old.key.clone(), &record)?;
    if let Some(c) = view.claim_of(old) {
        txn.compare.push((c.key.clone(), Compare::ModRevision(c.mod_revision)));
        put(txn, c.key.clone(), &record)?;
    }
    Ok(())
}
