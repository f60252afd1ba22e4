//! Packet filtering as data.
//!
//! [`nft`]: nftables rulesets built by pure functions and applied over netlink, one atomic
//! transaction per change, with no `nft` process and no ruleset listing (ADR 0006). Per-pod
//! state lives in set elements tagged with a comment naming their owner ([`nft::owned`]).
//! [`ct`]: conntrack entries forgotten over ctnetlink. [`iptables`]: for configurations that
//! ask for it, iptables' save/restore tools, one restore per family and change.

pub mod ct;
pub mod iptables;
mod names;
pub mod nflog;
pub mod nft;

pub use names::stable_name;
pub use nft::owned::{LOCK, with_lock};

/// Which packet filter a plugin writes its rules to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nftables,
    Iptables,
}
