//! Bridge VLANs: `ip link set BR type bridge vlan_filtering 1`, `bridge vlan add|del dev DEV
//! vid VID [pvid] [untagged]`, and 802.1Q sub-interfaces (`ip link add link DEV name DEV.VID
//! type vlan id VID`). Kernels built without bridge VLAN filtering or 802.1Q answer these
//! with "operation not supported" / "unknown device type"; callers turn that into a clear
//! error for the user.

use netlink_packet_route::link::{
    AfSpecBridge, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind, InfoVlan,
    LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::link::{check_ifname, link_msg};
use crate::{Handle, Result};

/// One VLAN membership of a bridge port (or of the bridge itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortVlan {
    pub vid: u16,
    /// Untagged frames entering the port belong to this VLAN.
    pub pvid: bool,
    /// Frames of this VLAN leave the port untagged.
    pub untagged: bool,
}

impl Handle {
    /// `ip link set BR type bridge vlan_filtering 1|0`.
    pub fn bridge_set_vlan_filtering(&self, index: u32, on: bool) -> Result<()> {
        let msg = link_msg(
            index,
            vec![LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Bridge),
                LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(on)])),
            ])],
        );
        self.request(RouteNetlinkMessage::NewLink(msg), 0).map(drop).map_err(|f| {
            self.fail(format_args!("set vlan_filtering {} on bridge {}", u8::from(on), self.label(index)), f)
        })
    }

    /// `bridge vlan add dev DEV vid VID [pvid] [untagged]`.
    pub fn bridge_vlan_add(&self, index: u32, vlan: PortVlan) -> Result<()> {
        self.request(RouteNetlinkMessage::SetLink(build_port_vlan(index, vlan)), 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("add vlan {} to {}", vlan.vid, self.label(index)), f))
    }

    /// `bridge vlan del dev DEV vid VID`.
    pub fn bridge_vlan_del(&self, index: u32, vid: u16) -> Result<()> {
        let vlan = PortVlan { vid, pvid: false, untagged: false };
        self.request(RouteNetlinkMessage::DelLink(build_port_vlan(index, vlan)), 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("delete vlan {vid} from {}", self.label(index)), f))
    }

    /// `ip link add link PARENT name NAME type vlan id VID`.
    pub fn vlan_add(&self, name: &str, parent: u32, vid: u16) -> Result<()> {
        check_ifname(name)?;
        let msg = link_msg(
            0,
            vec![
                LinkAttribute::IfName(name.to_string()),
                LinkAttribute::Link(parent),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(vid)])),
                ]),
            ],
        );
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            netlink_packet_core::NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL,
        )
        .map(drop)
        .map_err(|f| self.fail(format_args!("add vlan {name} id {vid} on {}", self.label(parent)), f))
    }
}

/// The AF_BRIDGE link message carrying one `IFLA_BRIDGE_VLAN_INFO`.
pub(crate) fn build_port_vlan(index: u32, vlan: PortVlan) -> LinkMessage {
    let mut flags = BridgeVlanInfoFlags::empty();
    if vlan.pvid {
        flags |= BridgeVlanInfoFlags::Pvid;
    }
    if vlan.untagged {
        flags |= BridgeVlanInfoFlags::Untagged;
    }
    let info = BridgeVlanInfo { flags, vid: vlan.vid };
    let mut msg = link_msg(index, vec![LinkAttribute::AfSpecBridge(vec![AfSpecBridge::VlanInfo(info)])]);
    msg.header.interface_family = AddressFamily::Bridge;
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_vlan_message_is_af_bridge_with_flags() {
        let msg = build_port_vlan(7, PortVlan { vid: 42, pvid: true, untagged: true });
        assert_eq!(msg.header.index, 7);
        assert_eq!(msg.header.interface_family, AddressFamily::Bridge);
        match &msg.attributes[0] {
            LinkAttribute::AfSpecBridge(nlas) => match &nlas[0] {
                AfSpecBridge::VlanInfo(info) => {
                    assert_eq!(info.vid, 42);
                    assert!(info.flags.contains(BridgeVlanInfoFlags::Pvid | BridgeVlanInfoFlags::Untagged));
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
}
