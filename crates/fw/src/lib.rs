//! Packet filtering as data: nftables statements are built by pure functions into a
//! [`Batch`], and a batch is applied with ONE `nft -f -` run, which the kernel commits as one
//! transaction — a change is all there or not at all. Per-pod state lives in set elements
//! tagged with a comment naming their owner, so removing a pod never needs to know what it
//! had: [`owned_elements`] finds it. For configurations that ask for iptables, [`iptables`]
//! runs its save/restore tools the same way: one restore per family and change.

mod batch;
mod elements;
pub mod iptables;
mod names;
mod owned;

pub use batch::{Batch, Error, apply, list_json, with_lock};
pub use elements::{Element, owned_elements, set_elements};
pub use names::stable_name;
pub use owned::{LOCK, OwnedTable};

/// Which packet filter a plugin writes its rules to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nftables,
    Iptables,
}
