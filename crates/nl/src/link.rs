//! Links (`ip link show|set|delete`, `ip link set DEV type bridge_slave ...`).
//! Creating links lives in `link_add.rs`.

use std::os::fd::AsRawFd;

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netns::NetNs;

use crate::mac::mac_from_slice;
use crate::{Error, Failure, Handle, Result};

/// Longest interface name the kernel accepts (`IFNAMSIZ - 1`).
pub const IFNAME_MAX: usize = 15;

/// A network interface as `ip -d link show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "veth", "bridge", "macvlan", ... (`None` for e.g. loopback).
    pub kind: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// `IFF_UP` (administratively up, not carrier).
    pub up: bool,
    /// `IFLA_MASTER`: the bridge this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_LINK`: e.g. a veth's peer index or a macvlan's parent index.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: set when `link` lives in another namespace.
    pub link_netnsid: Option<i32>,
    pub promisc: bool,
    pub txqlen: u32,
    pub allmulti: bool,
    /// `IFLA_IFALIAS` (`ip link set DEV alias TEXT`); `None` when unset.
    pub alias: Option<String>,
}

/// Bridge port options of an enslaved link (`ip -d link show` → `info_slave_data`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgePort {
    pub hairpin: bool,
    pub isolated: bool,
    pub learning: bool,
}

impl Link {
    pub(crate) fn from_msg(m: &LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            master: None,
            link: None,
            link_netnsid: None,
            promisc: m.header.flags.contains(LinkFlags::Promisc),
            txqlen: 0,
            allmulti: m.header.flags.contains(LinkFlags::Allmulti),
            alias: None,
        };
        for attr in &m.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Address(a) => link.mac = mac_from_slice(a),
                LinkAttribute::Mtu(v) => link.mtu = *v,
                LinkAttribute::Controller(v) if *v != 0 => link.master = Some(*v),
                LinkAttribute::Link(v) if *v != 0 => link.link = Some(*v),
                LinkAttribute::LinkNetNsId(v) => link.link_netnsid = Some(*v),
                LinkAttribute::TxQueueLen(v) => link.txqlen = *v,
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

fn bridge_port_from_msg(m: &LinkMessage) -> Option<BridgePort> {
    let infos = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    })?;
    let opts = infos.iter().find_map(|i| match i {
        LinkInfo::PortData(InfoPortData::BridgePort(opts)) => Some(opts),
        _ => None,
    })?;
    let mut port = BridgePort::default();
    for opt in opts {
        match opt {
            InfoBridgePort::HairpinMode(v) => port.hairpin = *v,
            InfoBridgePort::Isolated(v) => port.isolated = *v,
            InfoBridgePort::Learning(v) => port.learning = *v,
            _ => {}
        }
    }
    Some(port)
}

/// Rejects names the kernel would refuse (`dev_valid_name`), with a clear message.
pub(crate) fn check_ifname(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > IFNAME_MAX {
        "longer than 15 bytes"
    } else if name == "." || name == ".." {
        "reserved"
    } else if name.contains(['/', ':', '\0']) || name.contains(char::is_whitespace) {
        "contains '/', ':', NUL or whitespace"
    } else {
        return Ok(());
    };
    Err(Error::invalid("interface name", name, reason))
}

/// A `RTM_SETLINK`/`RTM_NEWLINK` message addressed to an existing link.
pub(crate) fn link_msg(index: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes = attributes;
    m
}

/// `IFF_*` flag change of one link: `flags` under `mask`.
pub(crate) fn build_flag_change(index: u32, flag: LinkFlags, on: bool) -> LinkMessage {
    let mut m = link_msg(index, Vec::new());
    m.header.change_mask = flag;
    if on {
        m.header.flags = flag;
    }
    m
}

fn none_if_absent<T>(r: Result<T, Failure>) -> Result<Option<T>, Failure> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Failure::Kernel { errno, .. }) if errno == libc::ENODEV => Ok(None),
        Err(e) => Err(e),
    }
}

impl Handle {
    /// `ip link show NAME`; `None` when there is no such link.
    pub fn link_get(&self, name: &str) -> Result<Option<Link>> {
        check_ifname(name)?;
        let msg = link_msg(0, vec![LinkAttribute::IfName(name.to_string())]);
        self.get_link(msg)
            .map(|m| m.as_ref().map(Link::from_msg))
            .map_err(|f| self.fail(format_args!("get link {name}"), f))
    }

    /// `ip link show` by index; `None` when there is no such link.
    pub fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        self.get_link(link_msg(index, Vec::new()))
            .map(|m| m.as_ref().map(Link::from_msg))
            .map_err(|f| self.fail(format_args!("get link index {index}"), f))
    }

    /// `ip link show` (every link in the namespace).
    pub fn link_list(&self) -> Result<Vec<Link>> {
        let replies = self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .map_err(|f| self.fail("list links", f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(Link::from_msg(m)),
                _ => None,
            })
            .collect())
    }

    /// Bridge port options of an enslaved link (`ip -d link show DEV`); `None` when the link
    /// is absent or not a bridge port.
    pub fn bridge_port_get(&self, index: u32) -> Result<Option<BridgePort>> {
        let msg = self
            .get_link(link_msg(index, Vec::new()))
            .map_err(|f| self.fail(format_args!("get link index {index}"), f))?;
        Ok(msg.as_ref().and_then(bridge_port_from_msg))
    }

    pub(crate) fn get_link(&self, msg: LinkMessage) -> Result<Option<LinkMessage>, Failure> {
        let replies = none_if_absent(self.request(RouteNetlinkMessage::GetLink(msg), 0))?;
        Ok(replies.into_iter().flatten().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(m),
            _ => None,
        }))
    }

    /// The link's name for error messages, or `index N` when it cannot be looked up.
    pub(crate) fn label(&self, index: u32) -> String {
        match self.get_link(link_msg(index, Vec::new())) {
            Ok(Some(m)) => Link::from_msg(&m).name,
            _ => format!("index {index}"),
        }
    }

    pub(crate) fn set_link(&self, msg: LinkMessage, what: impl Fn(String) -> String) -> Result<()> {
        let index = msg.header.index;
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map(drop)
            .map_err(|f| self.fail(what(self.label(index)), f))
    }

    /// `ip link delete DEV`.
    pub fn link_del(&self, index: u32) -> Result<()> {
        self.request(RouteNetlinkMessage::DelLink(link_msg(index, Vec::new())), 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("delete link {}", self.label(index)), f))
    }

    /// `ip link set DEV up|down`.
    pub fn link_set_up(&self, index: u32, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        let msg = build_flag_change(index, LinkFlags::Up, up);
        self.set_link(msg, |l| format!("set link {l} {state}"))
    }

    /// `ip link set DEV promisc on|off`.
    pub fn link_set_promisc(&self, index: u32, on: bool) -> Result<()> {
        let msg = build_flag_change(index, LinkFlags::Promisc, on);
        self.set_link(msg, |l| format!("set link {l} promisc {}", on_off(on)))
    }

    /// `ip link set DEV allmulticast on|off`.
    pub fn link_set_allmulti(&self, index: u32, on: bool) -> Result<()> {
        let msg = build_flag_change(index, LinkFlags::Allmulti, on);
        self.set_link(msg, |l| format!("set link {l} allmulticast {}", on_off(on)))
    }

    /// `ip link set DEV mtu MTU`.
    pub fn link_set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        let msg = link_msg(index, vec![LinkAttribute::Mtu(mtu)]);
        self.set_link(msg, |l| format!("set mtu {mtu} on link {l}"))
    }

    /// `ip link set DEV addrgenmode none`: the link gets no IPv6 link-local address, nor the
    /// routes that come with one, when it comes up. For host links that carry no IPv6 of their
    /// own (a bridge port, an IFB): each such address puts one more route in the namespace's
    /// single fe80::/64 node, which the kernel walks when a route is added there and when a
    /// link gains its carrier, so every pod's ADD got slower with the number of pods.
    pub fn link_set_addr_gen_none(&self, index: u32) -> Result<()> {
        let spec = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
        let msg = link_msg(index, vec![LinkAttribute::AfSpecUnspec(vec![spec])]);
        self.set_link(msg, |l| format!("set addrgenmode none on link {l}"))
    }

    /// `ip link set DEV txqueuelen N`.
    pub fn link_set_txqlen(&self, index: u32, qlen: u32) -> Result<()> {
        let msg = link_msg(index, vec![LinkAttribute::TxQueueLen(qlen)]);
        self.set_link(msg, |l| format!("set txqueuelen {qlen} on link {l}"))
    }

    /// `ip link set DEV address MAC`.
    pub fn link_set_mac(&self, index: u32, mac: [u8; 6]) -> Result<()> {
        let msg = link_msg(index, vec![LinkAttribute::Address(mac.to_vec())]);
        let text = crate::format_mac(&mac);
        self.set_link(msg, |l| format!("set address {text} on link {l}"))
    }

    /// `ip link set DEV master BRIDGE` / `ip link set DEV nomaster`.
    pub fn link_set_master(&self, index: u32, master: Option<u32>) -> Result<()> {
        let msg = link_msg(index, vec![LinkAttribute::Controller(master.unwrap_or(0))]);
        match master {
            Some(m) => self.set_link(msg, |l| format!("enslave link {l} to {}", self.label(m))),
            None => self.set_link(msg, |l| format!("release link {l} from its master")),
        }
    }

    /// `ip link set DEV alias TEXT`; an empty `alias` removes it (the kernel keeps at most
    /// 255 bytes).
    pub fn link_set_alias(&self, index: u32, alias: &str) -> Result<()> {
        let msg = link_msg(index, vec![LinkAttribute::IfAlias(alias.to_string())]);
        self.set_link(msg, |l| format!("set alias {alias:?} on link {l}"))
    }

    /// `ip link set DEV name NEW`.
    pub fn link_set_name(&self, index: u32, name: &str) -> Result<()> {
        check_ifname(name)?;
        let msg = link_msg(index, vec![LinkAttribute::IfName(name.to_string())]);
        self.set_link(msg, |l| format!("rename link {l} to {name}"))
    }

    /// `ip link set DEV netns NS`. The link keeps its index unless it clashes there.
    pub fn link_set_netns(&self, index: u32, ns: &NetNs) -> Result<()> {
        let fd = ns.as_fd().as_raw_fd();
        let msg = link_msg(index, vec![LinkAttribute::NetNsFd(fd)]);
        let path = ns.path().display();
        self.set_link(msg, |l| format!("move link {l} to netns {path}"))
    }

    /// `ip link set DEV type bridge_slave hairpin on isolated off learning on`; options left
    /// `None` are not changed. The link must already be a bridge port.
    pub fn bridge_port_set(
        &self,
        index: u32,
        hairpin: Option<bool>,
        isolated: Option<bool>,
        learning: Option<bool>,
    ) -> Result<()> {
        let Some(msg) = build_bridge_port(index, hairpin, isolated, learning) else {
            return Ok(());
        };
        // Port options travel in IFLA_LINKINFO, which only RTM_NEWLINK (not RTM_SETLINK)
        // applies to an existing link.
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("set bridge port options on link {}", self.label(index)), f))
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The `RTM_NEWLINK` changing bridge port options, or `None` when nothing is to change.
pub(crate) fn build_bridge_port(
    index: u32,
    hairpin: Option<bool>,
    isolated: Option<bool>,
    learning: Option<bool>,
) -> Option<LinkMessage> {
    let opts: Vec<InfoBridgePort> = [
        hairpin.map(InfoBridgePort::HairpinMode),
        isolated.map(InfoBridgePort::Isolated),
        learning.map(InfoBridgePort::Learning),
    ]
    .into_iter()
    .flatten()
    .collect();
    if opts.is_empty() {
        return None;
    }
    let info =
        vec![LinkInfo::PortKind(InfoPortKind::Bridge), LinkInfo::PortData(InfoPortData::BridgePort(opts))];
    Some(link_msg(index, vec![LinkAttribute::LinkInfo(info)]))
}

/// The first `InfoData` of a link message, for tests of the builders.
#[cfg(test)]
pub(crate) fn info_data(m: &LinkMessage) -> Option<&netlink_packet_route::link::InfoData> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Data(d) => Some(d),
            _ => None,
        }),
        _ => None,
    })
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
