//! A small blocking rtnetlink layer, named after what iproute2 calls things.
//!
//! A [`Handle`] is one NETLINK_ROUTE socket. [`Handle::in_netns`] opens it inside a network
//! namespace (on a short-lived thread, through [`netns::NetNs::run`]); the socket stays bound
//! to that namespace, so the handle is then used from any thread without switching namespace.
//! Requests are acked, dumps are multi-part and retried when the kernel reports them as
//! interrupted (`NLM_F_DUMP_INTR`), once, here, for every caller.
//!
//! One module per kernel object, each naming the iproute2 command it mirrors:
//! [`link`] (`ip link`), [`addr`] (`ip address`), [`route`] (`ip route`), [`rule`]
//! (`ip rule`), [`neigh`] (`ip neigh`, `bridge fdb`), [`tc`] (`tc qdisc`, `tc filter`) and
//! [`sysctl`] (`sysctl -w` inside a namespace, which is not netlink but belongs with it).
//!
//! Errors name the operation, the object and the namespace, and keep the errno:
//! `add address 10.1.2.3/24 to eth0 in netns /run/netns/x: file exists`.

pub mod addr;
mod bridge_vlan;
mod error;
pub mod link;
mod link_add;
mod link_macvlan;
mod mac;
pub mod neigh;
pub mod route;
pub mod rule;
mod socket;
pub mod sysctl;
pub mod tc;
mod tc_filter;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use netlink_packet_route::RouteNetlinkMessage;
use netns::NetNs;

pub use addr::Addr;
pub use bridge_vlan::PortVlan;
pub use error::{Error, Failure, Result};
pub use link::{BridgePort, Link};
pub use link_add::{MacvlanMode, VxlanConf};
pub use link_macvlan::MacvlanInfo;
pub use mac::{format_mac, parse_mac};
pub use neigh::{Fdb, Neigh};
pub use route::Route;
pub use rule::Rule;
pub use sysctl::{reset_inherited, sysctl_get, sysctl_set, sysctl_set_all};
pub use tc::{Qdisc, Tbf};
pub use tc_filter::Filter;

use error::in_netns;
use socket::{Conn, KernelSocket, Transport};

/// An IP address family, for filtering dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: std::net::IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    fn af(self) -> netlink_packet_route::AddressFamily {
        match self {
            Family::V4 => netlink_packet_route::AddressFamily::Inet,
            Family::V6 => netlink_packet_route::AddressFamily::Inet6,
        }
    }
}

/// One NETLINK_ROUTE socket bound to one network namespace. Safe to share between threads;
/// exchanges are serialised on the socket.
pub struct Handle {
    conn: Mutex<Conn>,
    ns: Option<PathBuf>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("ns", &self.ns).finish()
    }
}

impl Handle {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Handle> {
        let sock = KernelSocket::open().map_err(|source| Error::Socket { ns: None, source })?;
        Ok(Handle::with_transport(Box::new(sock), None))
    }

    /// A socket inside `ns`, opened on a fresh thread that entered it.
    pub fn in_netns(ns: &NetNs) -> Result<Handle> {
        let path = ns.path().to_path_buf();
        let sock =
            ns.run(KernelSocket::open)?.map_err(|source| Error::Socket { ns: Some(path.clone()), source })?;
        Ok(Handle::with_transport(Box::new(sock), Some(path)))
    }

    pub(crate) fn with_transport(t: Box<dyn Transport>, ns: Option<PathBuf>) -> Handle {
        Handle { conn: Mutex::new(Conn::new(t)), ns }
    }

    /// The namespace path given to [`Handle::in_netns`], if any.
    pub fn netns_path(&self) -> Option<&Path> {
        self.ns.as_deref()
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Conn> {
        // A panic while holding the lock leaves at most unread replies behind, which the
        // sequence-number check skips; the socket itself is still sound.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Failure> {
        self.conn().request(msg, flags)
    }

    pub(crate) fn dump(&self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, Failure> {
        self.conn().dump(msg)
    }

    /// Wraps a failure with the operation text and this handle's namespace.
    pub(crate) fn fail(&self, op: impl std::fmt::Display, source: Failure) -> Error {
        Error::Op { op: format!("{op}{}", in_netns(&self.ns)), source }
    }
}
