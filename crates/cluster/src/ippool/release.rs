//! DEL, GC and CHECK, and freeing one reservation (the reconciler's step). A reservation
//! and its claim go in one transaction conditioned on both still being as read; a lost race
//! means the reservation changed hands and is looked at again.

use std::net::IpAddr;

use super::view::{NetworkView, Stored, network_view};
use super::{IpPoolError, check_network_name};
use crate::store::{Compare, Datastore, Op, Txn};

/// How often DEL reads again after losing a race before it reports the contention.
const DEL_ATTEMPTS: u32 = 20;
/// How long DEL keeps asking a datastore that does not answer in time.
const DEL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// The transaction that deletes `s` and its claim (when the claim is the same attachment's).
fn delete_txn(view: &NetworkView, s: &Stored) -> Txn {
    let mut txn = Txn::default();
    for st in std::iter::once(s).chain(view.claim_of(s)) {
        txn.compare.push((st.key.clone(), Compare::ModRevision(st.mod_revision)));
        txn.ops.push(Op::Delete { key: st.key.clone() });
    }
    txn
}

/// DEL: frees every address of `(container_id, ifname)` in the network, whatever range it
/// came from (so DEL works after the ranges of a config changed). Nothing held is success.
pub fn release(
    store: &dyn Datastore,
    network: &str,
    container_id: &str,
    ifname: &str,
) -> Result<Vec<IpAddr>, IpPoolError> {
    check_network_name(network)?;
    let deadline = std::time::Instant::now() + DEL_PATIENCE;
    let mut attempt = 0;
    while attempt < DEL_ATTEMPTS {
        let view = match network_view(store, network) {
            Ok(v) => v,
            Err(e) if e.is_timeout() && std::time::Instant::now() < deadline => continue,
            Err(e) => return Err(e),
        };
        attempt += 1;
        let mine = view.of_attachment(container_id, ifname);
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let mut txn = Txn::default();
        for s in &mine {
            let t = delete_txn(&view, s);
            txn.compare.extend(t.compare);
            txn.ops.extend(t.ops);
        }
        match store.txn(&txn) {
            Ok(true) => return Ok(mine.iter().map(|s| s.record.ip).collect()),
            Ok(false) => {}
            // Applied or not, the next read tells.
            Err(e) if e.is_timeout() && std::time::Instant::now() < deadline => {}
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(std::time::Duration::from_millis(u64::from(attempt)));
    }
    Err(IpPoolError::Contended { attempts: DEL_ATTEMPTS })
}

/// Frees one reservation if it is still exactly as read; false when it changed meanwhile.
pub fn free(store: &dyn Datastore, view: &NetworkView, s: &Stored) -> Result<bool, IpPoolError> {
    Ok(store.txn(&delete_txn(view, s))?)
}

/// GC: frees the reservations this node made for the CNI network `cni_network` whose
/// attachment is not in `valid`. One transaction each, so a reservation that changed
/// meanwhile (taken over, freed) is skipped, not fatal.
pub fn gc(
    store: &dyn Datastore,
    network: &str,
    cni_network: &str,
    node: &str,
    valid: &[(String, String)],
) -> Result<Vec<IpAddr>, IpPoolError> {
    check_network_name(network)?;
    let view = network_view(store, network)?;
    let mut freed = Vec::new();
    for s in &view.reservations {
        let h = &s.record.holder;
        let live = valid.iter().any(|(id, ifname)| s.record.is_for(id, ifname));
        if h.node != node || h.cni_network != cni_network || live {
            continue;
        }
        if free(store, &view, s)? {
            freed.push(s.record.ip);
        }
    }
    Ok(freed)
}

/// CHECK: the attachment's reservations in the network.
pub fn held(
    store: &dyn Datastore,
    network: &str,
    container_id: &str,
    ifname: &str,
) -> Result<Vec<Stored>, IpPoolError> {
    check_network_name(network)?;
    let view = network_view(store, network)?;
    Ok(view.of_attachment(container_id, ifname).into_iter().cloned().collect())
}
