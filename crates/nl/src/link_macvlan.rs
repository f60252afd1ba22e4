//! macvlan link options after creation (`ip -d link show DEV` → `macvlan mode MODE
//! bcqueuelen N`, `ip link set DEV type macvlan bcqueuelen N`).

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};

use crate::link::link_msg;
use crate::{Handle, MacvlanMode, Result};

/// The macvlan options the kernel reports for a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MacvlanInfo {
    /// `IFLA_MACVLAN_MODE`; `None` for a mode twill has no name for.
    pub mode: Option<MacvlanMode>,
    /// `IFLA_MACVLAN_BC_QUEUE_LEN`, when the kernel reports it.
    pub bc_queue_len: Option<u32>,
}

fn mode_of(m: &MacVlanMode) -> Option<MacvlanMode> {
    Some(match m {
        MacVlanMode::Private => MacvlanMode::Private,
        MacVlanMode::Vepa => MacvlanMode::Vepa,
        MacVlanMode::Bridge => MacvlanMode::Bridge,
        MacVlanMode::Passthrough => MacvlanMode::Passthru,
        MacVlanMode::Source => MacvlanMode::Source,
        _ => return None,
    })
}

/// The macvlan options of a link message; `None` when the link is not a macvlan.
pub(crate) fn macvlan_from_msg(m: &LinkMessage) -> Option<MacvlanInfo> {
    let infos = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    })?;
    if !infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::MacVlan))) {
        return None;
    }
    let mut info = MacvlanInfo::default();
    for i in infos {
        if let LinkInfo::Data(InfoData::MacVlan(opts)) = i {
            for opt in opts {
                match opt {
                    InfoMacVlan::Mode(mode) => info.mode = mode_of(mode),
                    InfoMacVlan::BcQueueLen(n) => info.bc_queue_len = Some(*n),
                    _ => {}
                }
            }
        }
    }
    Some(info)
}

/// The `RTM_NEWLINK` changing the broadcast queue length of an existing macvlan.
pub(crate) fn build_bc_queue_len(index: u32, len: u32) -> LinkMessage {
    let data = InfoData::MacVlan(vec![InfoMacVlan::BcQueueLen(len)]);
    let info = vec![LinkInfo::Kind(InfoKind::MacVlan), LinkInfo::Data(data)];
    link_msg(index, vec![LinkAttribute::LinkInfo(info)])
}

impl Handle {
    /// `ip -d link show DEV` for a macvlan: its mode and broadcast queue length. `None` when
    /// the link is absent or not a macvlan.
    pub fn macvlan_get(&self, index: u32) -> Result<Option<MacvlanInfo>> {
        let msg = self
            .get_link(link_msg(index, Vec::new()))
            .map_err(|f| self.fail(format_args!("get link index {index}"), f))?;
        Ok(msg.as_ref().and_then(macvlan_from_msg))
    }

    /// `ip link set DEV type macvlan bcqueuelen LEN` (kernel 5.11 and later).
    pub fn macvlan_set_bc_queue_len(&self, index: u32, len: u32) -> Result<()> {
        // Like bridge port options, IFLA_LINKINFO is only applied through RTM_NEWLINK.
        self.request(RouteNetlinkMessage::NewLink(build_bc_queue_len(index, len)), 0)
            .map(drop)
            .map_err(|f| self.fail(format_args!("set bcqueuelen {len} on link {}", self.label(index)), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn macvlan_msg(opts: Vec<InfoMacVlan>) -> LinkMessage {
        let info = vec![LinkInfo::Kind(InfoKind::MacVlan), LinkInfo::Data(InfoData::MacVlan(opts))];
        link_msg(3, vec![LinkAttribute::LinkInfo(info)])
    }

    #[test]
    fn reads_mode_and_queue_length() {
        let m = macvlan_msg(vec![InfoMacVlan::Mode(MacVlanMode::Passthrough), InfoMacVlan::BcQueueLen(500)]);
        let info = macvlan_from_msg(&m).unwrap();
        assert_eq!(info.mode, Some(MacvlanMode::Passthru));
        assert_eq!(info.bc_queue_len, Some(500));
    }

    #[test]
    fn other_kinds_are_not_macvlans() {
        let info = vec![LinkInfo::Kind(InfoKind::Veth)];
        assert_eq!(macvlan_from_msg(&link_msg(1, vec![LinkAttribute::LinkInfo(info)])), None);
        assert_eq!(macvlan_from_msg(&link_msg(1, Vec::new())), None);
    }

    #[test]
    fn queue_length_change_names_the_kind() {
        let m = build_bc_queue_len(4, 1000);
        assert_eq!(m.header.index, 4);
        assert_eq!(macvlan_from_msg(&m).unwrap().bc_queue_len, Some(1000));
    }
}
