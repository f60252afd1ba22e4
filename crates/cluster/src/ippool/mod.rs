//! Cluster-wide IP reservations, the datastore side of the `whereabouts` IPAM plugin.
//!
//! A pool is one range (CIDR) of one IPAM network (`network_name`, Whereabouts' way of
//! keeping separate pools over the same range). Each reserved address is one key,
//! `/twill/ipam/NET/ips/CIDR/IP`, and — when overlapping ranges are checked, the default —
//! a second one per network and address, `/twill/ipam/NET/claims/IP`, so two ranges that
//! overlap can never give one address out twice. Both hold the same [`IpReservation`].
//!
//! Every change is one compare-and-swap transaction ([`crate::store::Txn`]): an ADD reads
//! the network's keys in one listing, picks its addresses (`ipam::PoolRange`) and creates
//! them on the condition that they are still absent; losing the race means reading again
//! and picking again. Nothing is locked, so a plugin killed at any point leaves either
//! nothing or a complete reservation, which DEL, GC or the agent's reconciler frees
//! ([`allocate`], [`release`], [`orphans`]).

mod allocate;
pub mod orphans;
mod release;
mod view;

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::record::RecordError;
use crate::store::StoreError;

pub use allocate::{AllocRequest, allocate};
pub use release::{free, gc, held, release};
pub use view::{NetworkView, PoolView, Stored, network_view, networks, pools};

/// Who an address is reserved for, and where.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Holder {
    /// `NAMESPACE/NAME` of the pod (`K8S_POD_NAMESPACE`/`K8S_POD_NAME`).
    pub pod: String,
    pub container_id: String,
    pub ifname: String,
    /// The node whose plugin made the reservation.
    pub node: String,
    /// The CNI network (`name` of the network configuration): GC of one network never
    /// frees another network's reservations from the same pool.
    pub cni_network: String,
}

/// `/twill/ipam/NET/ips/CIDR/IP` and `/twill/ipam/NET/claims/IP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpReservation {
    pub ip: IpAddr,
    /// The IPAM network (`network_name`); empty for the unnamed one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// The pool's range.
    pub range: IpNet,
    #[serde(flatten)]
    pub holder: Holder,
    /// Unix seconds when the address was reserved (or taken over by a new container).
    #[serde(default)]
    pub since: u64,
}

impl IpReservation {
    /// Whether this reservation is for the CNI attachment `(container_id, ifname)`.
    pub fn is_for(&self, container_id: &str, ifname: &str) -> bool {
        self.holder.container_id == container_id && self.holder.ifname == ifname
    }

    pub fn key(&self) -> String {
        crate::layout::ip_reservation_key(&self.network, self.range, self.ip)
    }

    pub fn claim_key(&self) -> String {
        crate::layout::ip_claim_key(&self.network, self.ip)
    }
}

/// What the pool operations can report.
#[derive(Debug, thiserror::Error)]
pub enum IpPoolError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("no free address left in range {range} of network {network}")]
    Exhausted { network: String, range: String },
    #[error("gave up after {attempts} attempts: other allocations kept taking the addresses picked")]
    Contended { attempts: u32 },
    #[error("invalid network_name {name:?}: {reason}")]
    NetworkName { name: String, reason: String },
    #[error("range {range} appears twice in one configuration (each range is one pool)")]
    DuplicateRange { range: IpNet },
}

impl IpPoolError {
    /// The datastore could not be reached: trying again later may work.
    pub fn is_unavailable(&self) -> bool {
        self.store().is_some_and(StoreError::is_unavailable)
    }

    /// The datastore did not answer in time (see [`StoreError::is_timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.store().is_some_and(StoreError::is_timeout)
    }

    fn store(&self) -> Option<&StoreError> {
        match self {
            IpPoolError::Store(e) | IpPoolError::Record(RecordError::Store(e)) => Some(e),
            _ => None,
        }
    }
}

/// `network_name` becomes one key component: Kubernetes name rules, as for every name.
pub fn check_network_name(name: &str) -> Result<(), IpPoolError> {
    if name.is_empty() {
        return Ok(());
    }
    crate::layout::check_name("network", name)
        .map_err(|e| IpPoolError::NetworkName { name: name.to_string(), reason: e.to_string() })
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
