//! Creating links (`ip link add NAME type veth|bridge|macvlan|vxlan|ifb ...`).
//!
//! `build_*` compute the `RTM_NEWLINK` message (pure, unit tested); the `Handle` methods send
//! it with `NLM_F_CREATE | NLM_F_EXCL`, so an existing name fails with `EEXIST`
//! ([`crate::Error::is_exists`]) and concurrent creators can fall back to using it.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::str::FromStr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};
use netns::NetNs;

use crate::link::{Link, check_ifname, link_msg};
use crate::{Error, Handle, Result};

/// macvlan modes (`ip link add ... type macvlan mode MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    Private,
    Vepa,
    #[default]
    Bridge,
    Passthru,
    Source,
}

impl FromStr for MacvlanMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "private" => MacvlanMode::Private,
            "vepa" => MacvlanMode::Vepa,
            "bridge" => MacvlanMode::Bridge,
            "passthru" => MacvlanMode::Passthru,
            "source" => MacvlanMode::Source,
            _ => {
                return Err(Error::invalid(
                    "macvlan mode",
                    s,
                    "expected private, vepa, bridge, passthru or source",
                ));
            }
        })
    }
}

impl From<MacvlanMode> for MacVlanMode {
    fn from(m: MacvlanMode) -> Self {
        match m {
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
            MacvlanMode::Source => MacVlanMode::Source,
        }
    }
}

/// A vxlan device (`ip link add NAME type vxlan id VNI local IP dev PARENT dstport PORT
/// [no]learning`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConf {
    pub name: String,
    pub vni: u32,
    pub local: Option<IpAddr>,
    /// Underlay link index (`dev`).
    pub parent: Option<u32>,
    /// UDP destination port; 4789 is IANA's, the kernel default is 8472.
    pub port: u16,
    pub learning: bool,
    pub mtu: Option<u32>,
}

/// Name, MTU and MAC: the attributes every new link may carry.
fn base(name: &str, mtu: Option<u32>, mac: Option<[u8; 6]>) -> Vec<LinkAttribute> {
    let mut attrs = vec![LinkAttribute::IfName(name.to_string())];
    attrs.extend(mtu.map(LinkAttribute::Mtu));
    attrs.extend(mac.map(|m| LinkAttribute::Address(m.to_vec())));
    attrs
}

fn with_info(mut attrs: Vec<LinkAttribute>, kind: InfoKind, data: Option<InfoData>) -> LinkMessage {
    let mut info = vec![LinkInfo::Kind(kind)];
    info.extend(data.map(LinkInfo::Data));
    attrs.push(LinkAttribute::LinkInfo(info));
    link_msg(0, attrs)
}

/// The `RTM_NEWLINK` of a veth pair whose peer, when `peer_ns` is given, is born inside it.
pub(crate) fn build_veth(
    name: &str,
    peer_name: &str,
    peer_ns: Option<&NetNs>,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    peer_mac: Option<[u8; 6]>,
) -> LinkMessage {
    let mut peer_attrs = base(peer_name, mtu, peer_mac);
    peer_attrs.extend(peer_ns.map(|ns| LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd())));
    let peer = InfoVeth::Peer(link_msg(0, peer_attrs));
    with_info(base(name, mtu, mac), InfoKind::Veth, Some(InfoData::Veth(peer)))
}

pub(crate) fn build_macvlan(
    name: &str,
    parent: u32,
    mode: MacvlanMode,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    target_ns: Option<&NetNs>,
) -> LinkMessage {
    let mut attrs = base(name, mtu, mac);
    attrs.push(LinkAttribute::Link(parent));
    attrs.extend(target_ns.map(|ns| LinkAttribute::NetNsFd(ns.as_fd().as_raw_fd())));
    let data = InfoData::MacVlan(vec![InfoMacVlan::Mode(mode.into())]);
    with_info(attrs, InfoKind::MacVlan, Some(data))
}

pub(crate) fn build_vxlan(c: &VxlanConf) -> LinkMessage {
    let mut opts = vec![InfoVxlan::Id(c.vni)];
    match c.local {
        Some(IpAddr::V4(a)) => opts.push(InfoVxlan::Local(a)),
        Some(IpAddr::V6(a)) => opts.push(InfoVxlan::Local6(a)),
        None => {}
    }
    opts.extend(c.parent.map(InfoVxlan::Link));
    opts.push(InfoVxlan::Port(c.port));
    opts.push(InfoVxlan::Learning(c.learning));
    with_info(base(&c.name, c.mtu, None), InfoKind::Vxlan, Some(InfoData::Vxlan(opts)))
}

impl Handle {
    fn add_link(&self, msg: LinkMessage, what: impl FnOnce() -> String) -> Result<()> {
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
            .map_err(|f| self.fail(what(), f))
    }

    /// `ip link add NAME [address MAC] [mtu MTU] type veth peer name PEER [address PEER_MAC]
    /// [netns PEER_NS]`. The peer is created directly inside `peer_ns`, so it never appears
    /// in this namespace.
    pub fn veth_add(
        &self,
        name: &str,
        peer_name: &str,
        peer_ns: Option<&NetNs>,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<()> {
        check_ifname(name)?;
        check_ifname(peer_name)?;
        let msg = build_veth(name, peer_name, peer_ns, mtu, mac, peer_mac);
        self.add_link(msg, || match peer_ns {
            Some(ns) => format!("add veth {name} with peer {peer_name} in netns {}", ns.path().display()),
            None => format!("add veth {name} with peer {peer_name}"),
        })
    }

    /// `ip link add NAME [address MAC] [mtu MTU] type bridge`.
    pub fn bridge_add(&self, name: &str, mtu: Option<u32>, mac: Option<[u8; 6]>) -> Result<()> {
        check_ifname(name)?;
        let msg = with_info(base(name, mtu, mac), InfoKind::Bridge, None);
        self.add_link(msg, || format!("add bridge {name}"))
    }

    /// Creates the bridge unless a link of that name exists, and returns it. Safe against
    /// concurrent creators; fails when the existing link is not a bridge.
    pub fn bridge_ensure(&self, name: &str, mtu: Option<u32>, mac: Option<[u8; 6]>) -> Result<Link> {
        match self.bridge_add(name, mtu, mac) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
        let link = self
            .link_get(name)?
            .ok_or_else(|| Error::invalid("bridge", name, "vanished right after it was created"))?;
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::invalid("bridge", name, "a link of that name exists and is not a bridge"));
        }
        Ok(link)
    }

    /// `ip link add NAME link PARENT [address MAC] [mtu MTU] [netns NS] type macvlan mode MODE`.
    /// With `target_ns` the link is born inside it (the parent is resolved here).
    pub fn macvlan_add(
        &self,
        name: &str,
        parent: u32,
        mode: MacvlanMode,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        target_ns: Option<&NetNs>,
    ) -> Result<()> {
        check_ifname(name)?;
        let msg = build_macvlan(name, parent, mode, mtu, mac, target_ns);
        self.add_link(msg, || format!("add macvlan {name} on {}", self.label(parent)))
    }

    /// `ip link add NAME type vxlan id VNI [local IP] [dev PARENT] dstport PORT [no]learning`.
    pub fn vxlan_add(&self, conf: &VxlanConf) -> Result<()> {
        check_ifname(&conf.name)?;
        if conf.vni >= 1 << 24 {
            return Err(Error::invalid("vxlan id", conf.vni, "must be below 2^24"));
        }
        self.add_link(build_vxlan(conf), || format!("add vxlan {} id {}", conf.name, conf.vni))
    }

    /// `ip link add NAME [mtu MTU] type ifb`.
    pub fn ifb_add(&self, name: &str, mtu: Option<u32>) -> Result<()> {
        check_ifname(name)?;
        let msg = with_info(base(name, mtu, None), InfoKind::Ifb, None);
        self.add_link(msg, || format!("add ifb {name}"))
    }
}

#[cfg(test)]
#[path = "link_add_tests.rs"]
mod tests;
