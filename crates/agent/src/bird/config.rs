//! The subset of BIRD 2's configuration language twill writes, as data, and its rendering.
//!
//! Planners ([`crate::bgp::plan`] for a node, the lab's router and outside host) build a
//! [`BirdConfig`]; [`BirdConfig::render`] ([`super::render`]) turns it into text. Nothing
//! here reads the kernel or the datastore, so every configuration twill can produce is
//! golden-tested and checked with `bird -p` (`crates/agent/tests/bird_config.rs`).

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// An address family, i.e. a BIRD channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    pub fn of_net(net: &IpNet) -> Family {
        Family::of(net.addr())
    }

    /// The channel keyword: `ipv4`, `ipv6`.
    pub fn channel(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// `4` or `6`, for protocol names.
    pub fn digit(self) -> char {
        match self {
            Family::V4 => '4',
            Family::V6 => '6',
        }
    }
}

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdConfig {
    /// Comment lines at the top of the file (without `#`).
    pub header: Vec<String>,
    pub router_id: Ipv4Addr,
    /// `graceful restart wait`: the longest a BIRD started with `-R` holds back kernel
    /// synchronisation waiting for its peers' End-of-RIB.
    pub graceful_restart_wait: Option<u32>,
    /// Interfaces whose connected networks go into BIRD's tables (`protocol direct`), so
    /// that next hops of multihop sessions resolve through them.
    pub direct: Vec<String>,
    pub kernel: Option<Kernel>,
    pub statics: Vec<Static>,
    pub filters: Vec<Filter>,
    /// Options every session shares, rendered as `template bgp twill_bgp`.
    pub template: Option<BgpTemplate>,
    pub sessions: Vec<BgpSession>,
}

/// `protocol kernel` per family: what BIRD puts into the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub families: Vec<Family>,
    /// The route metric BIRD stamps on its routes; it also only ever considers routes with
    /// this metric its own, so it never touches anyone else's.
    pub metric: u32,
    /// The export filter (BIRD table → kernel).
    pub export: Export,
    /// Learn routes other software put into the kernel (the default route), so that
    /// multihop next hops resolve. They are never exported to BGP by twill's filters.
    pub learn: bool,
    /// Leave the routes in the kernel when BIRD shuts down.
    pub persist: bool,
    /// Defer kernel synchronisation during graceful restart recovery (`bird -R`).
    pub graceful_restart: bool,
    pub scan_seconds: u32,
}

/// `protocol static NAME { FAMILY; route NET blackhole; ... }`: routes to announce. They are
/// blackholes in BIRD's table only; the kernel export filters never take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Static {
    pub name: String,
    pub comment: Option<String>,
    pub family: Family,
    pub routes: Vec<IpNet>,
}

/// A named filter: its rules in order, then `reject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

/// One rule of a [`Filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `if net ~ [ NETS ] then reject;` (exact prefixes).
    RejectNets(Vec<IpNet>),
    /// `if proto = "A" || proto = "B" then accept;`
    AcceptProtocols(Vec<String>),
    /// `if source = RTS_BGP then accept;`
    AcceptBgp,
}

/// What a channel takes or gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    All,
    None,
    Filter(String),
}

/// Options shared by every BGP session of one speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpTemplate {
    pub local_as: u32,
    pub hold_seconds: u32,
    /// Seconds from a protocol's start to its first connection attempt.
    pub connect_delay_seconds: u32,
    /// Seconds between connection attempts.
    pub connect_retry_seconds: u32,
    /// Minimum and maximum delay before a failed session is tried again.
    pub error_wait_seconds: (u32, u32),
    /// `graceful restart on` with this restart time; `aware` (helper only) when `None`.
    pub graceful_restart_seconds: Option<u32>,
}

/// Where a session's neighbour is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Neighbor {
    /// `neighbor IP as AS`.
    Addr { ip: IpAddr, asn: u32 },
    /// `neighbor range NET as AS`: dynamic BGP, one passive session per peer that connects
    /// from NET, named `DYNAMIC_NAME` + a number.
    Range { net: IpNet, asn: u32, dynamic_name: String },
}

/// Whether the neighbour is on a shared segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// `direct`: on a connected network; next hops used as they come.
    Direct,
    /// `multihop`: reached through routers; next hops resolved through BIRD's tables.
    Multihop,
}

/// One channel of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub family: Family,
    pub import: Export,
    pub export: Export,
}

/// `protocol bgp NAME from twill_bgp { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSession {
    pub name: String,
    /// What the session is for (`node node-2`, `BGPPeer tor`); BIRD shows it as
    /// `Description:` in `show protocols all`, which is how twill maps sessions back.
    pub description: String,
    /// The local address to use (`local IP`).
    pub local_ip: Option<IpAddr>,
    pub neighbor: Neighbor,
    pub hop: Hop,
    pub rr_client: bool,
    pub passive: bool,
    /// TCP MD5 signature key (RFC 2385).
    pub password: Option<String>,
    pub channels: Vec<Channel>,
}

/// A protocol name from an address: `PREFIX4_10_100_0_12`, `PREFIX6_fd00_100__12`. BIRD's
/// names are letters, digits and `_`; addresses are unique per session where node and peer
/// names (with `-` and `.`) would not map one-to-one.
pub fn session_name(prefix: &str, ip: IpAddr) -> String {
    let spelled: String =
        ip.to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{prefix}{}_{spelled}", Family::of(ip).digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_bird_symbols() {
        assert_eq!(session_name("mesh", "10.100.0.12".parse().unwrap()), "mesh4_10_100_0_12");
        assert_eq!(session_name("peer", "fd00:100::12".parse().unwrap()), "peer6_fd00_100__12");
    }
}
