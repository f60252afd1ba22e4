//! A node's place in the cluster: one datastore lease, the pod subnets claimed under it
//! (`/twill/subnets/CIDR`, compare-and-swap so two nodes never share one) and the node
//! record (`/twill/nodes/NAME`). A node that restarts gets its subnet back: while its old
//! lease lives the subnet key still names it and is re-attached to the new lease; after that
//! the subnet remembered in the state directory is preferred if still free.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::layout::{self, subnet_key, subnet_of_key};
use crate::record::{BackendKind, NodeBgp, NodeRecord, RecordError, SubnetOwner, decode, encode};
use crate::store::{Datastore, Entry, LeaseId, StoreError, Txn};
use crate::subnet::{SubnetError, SubnetPool};

/// The health a node publishes until its first reconcile pass.
pub const HEALTH_JOINING: &str = "joining";

/// How often a claim is retried when other nodes win the compare-and-swap.
const CLAIM_TRIES: u32 = 16;

/// What a node asks of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConf {
    pub node: String,
    pub node_ip: IpAddr,
    pub node_ip6: Option<IpAddr>,
    pub pool: SubnetPool,
    pub pool6: Option<SubnetPool>,
    pub backend: BackendKind,
    pub vtep_mac: Option<[u8; 6]>,
    /// The node's BGP AS and role (bgp backend).
    pub bgp: Option<NodeBgp>,
    pub ttl: Duration,
    /// Where the agent's HTTP server answers from elsewhere (none: loopback only).
    pub http: Option<String>,
    /// The node's labels, published in its record.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A node's subnets (also what the state directory remembers across restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnets {
    pub subnet: Option<IpNet>,
    #[serde(default)]
    pub subnet6: Option<IpNet>,
}

/// A node that has joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub lease: LeaseId,
    pub subnet: IpNet,
    pub subnet6: Option<IpNet>,
}

impl Membership {
    pub fn subnets(&self) -> Subnets {
        Subnets { subnet: Some(self.subnet), subnet6: self.subnet6 }
    }
}

/// What a renewal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Renewal {
    /// The lease had expired and the node joined again with a new one.
    pub rejoined: bool,
    /// The node's subnets are not the ones it had.
    pub changed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Subnet(#[from] SubnetError),
    #[error("could not claim a subnet of {cidr} in {tries} attempts: other nodes kept winning")]
    Contention { cidr: IpNet, tries: u32 },
}

/// How to get a subnet, decided from the current claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The node already holds this subnet (a restart, or a renewal); `lease` is the lease the
    /// key is attached to now.
    Readopt { net: IpNet, mod_revision: u64, lease: Option<LeaseId> },
    /// A free subnet to create.
    Fresh(IpNet),
}

/// Decides the claim of `node` in `pool` from the `/twill/subnets/` entries. Keys that do not
/// name a subnet are ignored; claims whose owner cannot be read count as taken.
pub fn plan_claim(
    pool: &SubnetPool,
    node: &str,
    entries: &[Entry],
    prefer: &[IpNet],
) -> Result<Claim, SubnetError> {
    let mut taken = Vec::new();
    for e in entries {
        let Some(net) = subnet_of_key(&e.key) else { continue };
        let mine = decode::<SubnetOwner>(e).is_ok_and(|o| o.node == node);
        if mine && pool.holds(net) {
            return Ok(Claim::Readopt { net, mod_revision: e.mod_revision, lease: e.lease });
        }
        taken.push(net);
    }
    pool.pick(&taken, prefer).map(Claim::Fresh)
}

/// Claims a subnet of `pool` for the node under `lease`, preferring `prefer`.
pub fn claim(
    store: &dyn Datastore,
    conf: &MemberConf,
    pool: &SubnetPool,
    lease: LeaseId,
    prefer: Option<IpNet>,
) -> Result<IpNet, MemberError> {
    let owner = SubnetOwner { node: conf.node.clone() };
    for _ in 0..CLAIM_TRIES {
        let listing = store.list(layout::SUBNETS)?;
        let plan = plan_claim(pool, &conf.node, &listing.entries, prefer.as_slice())?;
        let (net, txn) = match plan {
            Claim::Readopt { net, lease: held, .. } if held == Some(lease) => return Ok(net),
            Claim::Readopt { net, mod_revision, .. } => {
                let key = subnet_key(net);
                (net, Txn::update(&key, mod_revision, &encode(&key, &owner)?, Some(lease)))
            }
            Claim::Fresh(net) => {
                let key = subnet_key(net);
                (net, Txn::create(&key, &encode(&key, &owner)?, Some(lease)))
            }
        };
        if store.txn(&txn)? {
            return Ok(net);
        }
    }
    Err(MemberError::Contention { cidr: pool.cluster(), tries: CLAIM_TRIES })
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The health server's address as other hosts reach it: none on loopback, the node's
/// address for a wildcard listener.
pub fn http_address(listen: std::net::SocketAddr, node_ip: std::net::IpAddr) -> Option<String> {
    let ip = listen.ip();
    match (ip.is_loopback(), ip.is_unspecified()) {
        (true, _) => None,
        (_, true) => Some(std::net::SocketAddr::new(node_ip, listen.port()).to_string()),
        _ => Some(listen.to_string()),
    }
}

/// The node record for `m`.
pub fn node_record(conf: &MemberConf, m: &Membership, health: &str) -> NodeRecord {
    let now = unix_now();
    NodeRecord {
        name: conf.node.clone(),
        node_ip: conf.node_ip,
        node_ip6: conf.node_ip6,
        subnet: m.subnet,
        subnet6: m.subnet6,
        vtep_mac: conf.vtep_mac.map(|m| nl::format_mac(&m)),
        backend: conf.backend,
        expires: now + conf.ttl.as_secs(),
        heartbeat: now,
        health: health.to_string(),
        bgp: conf.bgp,
        http: conf.http.clone(),
        labels: conf.labels.clone(),
    }
}

/// Writes the node record under the node's lease, with the agent's `health` as it is now.
pub fn publish(
    store: &dyn Datastore,
    conf: &MemberConf,
    m: &Membership,
    health: &str,
) -> Result<(), MemberError> {
    let key = layout::node_key(&conf.node);
    Ok(store.put(&key, &encode(&key, &node_record(conf, m, health))?, Some(m.lease))?)
}

/// Takes a lease, claims the subnets (preferring `prior`) and publishes the node record. On
/// failure the lease is revoked, which releases whatever was claimed.
pub fn join(store: &dyn Datastore, conf: &MemberConf, prior: &Subnets) -> Result<Membership, MemberError> {
    let lease = store.lease_grant(conf.ttl)?;
    let attempt = || -> Result<Membership, MemberError> {
        let subnet = claim(store, conf, &conf.pool, lease, prior.subnet)?;
        let subnet6 = match &conf.pool6 {
            Some(pool6) => Some(claim(store, conf, pool6, lease, prior.subnet6)?),
            None => None,
        };
        let m = Membership { lease, subnet, subnet6 };
        publish(store, conf, &m, HEALTH_JOINING)?;
        Ok(m)
    };
    attempt().inspect_err(|_| {
        let _ = store.lease_revoke(lease);
    })
}

/// Keeps the lease alive, makes sure the node still holds its subnets and refreshes the node
/// record. A lease that expired meanwhile (a long datastore outage) is replaced by joining
/// again, preferring the same subnets.
pub fn renew(
    store: &dyn Datastore,
    conf: &MemberConf,
    m: &mut Membership,
    health: &str,
) -> Result<Renewal, MemberError> {
    let before = m.subnets();
    if !store.lease_keepalive(m.lease)? {
        *m = join(store, conf, &before)?;
        return Ok(Renewal { rejoined: true, changed: m.subnets() != before });
    }
    m.subnet = claim(store, conf, &conf.pool, m.lease, Some(m.subnet))?;
    if let Some(pool6) = &conf.pool6 {
        m.subnet6 = Some(claim(store, conf, pool6, m.lease, m.subnet6)?);
    }
    publish(store, conf, m, health)?;
    Ok(Renewal { rejoined: false, changed: m.subnets() != before })
}

/// Leaves the cluster: deletes the node record and the node's subnet claims, then revokes
/// the lease. Best-effort: every step is tried, the failures are returned.
pub fn leave(store: &dyn Datastore, conf: &MemberConf, m: &Membership) -> Vec<MemberError> {
    let mut errors = Vec::new();
    if let Err(e) = store.delete(&layout::node_key(&conf.node)) {
        errors.push(e.into());
    }
    for net in [Some(m.subnet), m.subnet6].into_iter().flatten() {
        if let Err(e) = release(store, &conf.node, net) {
            errors.push(e);
        }
    }
    match store.lease_revoke(m.lease) {
        Ok(()) | Err(StoreError::LeaseNotFound(_)) => {}
        Err(e) => errors.push(e.into()),
    }
    errors
}

/// Deletes the claim on `net` if `node` still holds it.
fn release(store: &dyn Datastore, node: &str, net: IpNet) -> Result<(), MemberError> {
    let key = subnet_key(net);
    let Some(e) = store.get(&key)? else { return Ok(()) };
    if decode::<SubnetOwner>(&e).is_ok_and(|o| o.node == node) {
        store.txn(&Txn::delete(&key, e.mod_revision))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::http_address;

    #[test]
    fn only_a_reachable_listener_is_published() {
        let node = "10.0.0.11".parse().unwrap();
        assert_eq!(http_address("127.0.0.1:9099".parse().unwrap(), node), None);
        assert_eq!(http_address("[::1]:9099".parse().unwrap(), node), None);
        assert_eq!(http_address("0.0.0.0:9099".parse().unwrap(), node).as_deref(), Some("10.0.0.11:9099"));
        assert_eq!(http_address("10.0.0.12:80".parse().unwrap(), node).as_deref(), Some("10.0.0.12:80"));
    }
}
