//! Traffic filters (`tc filter add|show`): the catch-all u32 filter with a mirred redirect
//! that the bandwidth plugin hangs on a link's ingress to send its traffic through an ifb.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute,
    TcFilterU32Option, TcHandle, TcMessage, TcMirror, TcMirrorActionType, TcOption, TcU32Key, TcU32Selector,
    TcU32SelectorFlags,
};

use crate::tc::INGRESS_HANDLE;
use crate::{Error, Handle, Result};

/// `ETH_P_ALL`.
const ETH_P_ALL: u16 = 0x0003;
/// The reference bandwidth plugin's filter priority.
const PRIO: u16 = 1;

/// One filter (`tc filter show dev DEV parent P`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub kind: String,
    pub prio: u16,
    /// Ethertype in host order (`ETH_P_ALL` is 3).
    pub protocol: u16,
    /// Target link of a `mirred egress redirect` action, if any.
    pub redirect: Option<u32>,
}

/// `tcm_info` of a filter: priority in the upper half, ethertype in network order below.
fn filter_info(prio: u16, protocol: u16) -> u32 {
    (u32::from(prio) << 16) | u32::from(protocol.to_be())
}

fn mirred_redirect(target: u32) -> TcAction {
    let mut mirror = TcMirror::default();
    mirror.generic.action = TcActionType::Stolen;
    mirror.eaction = TcMirrorActionType::EgressRedir;
    mirror.ifindex = target;
    let mut action = TcAction::default();
    action.attributes = vec![
        TcActionAttribute::Kind("mirred".into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(mirror))]),
    ];
    action
}

/// `u32 match u32 0 0 flowid 1:1 action mirred egress redirect dev TARGET`.
pub(crate) fn build_redirect(index: i32, parent: u32, target: u32) -> TcMessage {
    let mut sel = TcU32Selector::default();
    sel.flags = TcU32SelectorFlags::Terminal;
    sel.nkeys = 1;
    sel.keys = vec![TcU32Key::default()];
    let opts = vec![
        TcOption::U32(TcFilterU32Option::ClassId(TcHandle { major: 1, minor: 1 })),
        TcOption::U32(TcFilterU32Option::Selector(sel)),
        TcOption::U32(TcFilterU32Option::Action(vec![mirred_redirect(target)])),
    ];
    let mut m = TcMessage::with_index(index);
    m.header.parent = TcHandle::from(parent);
    m.header.info = filter_info(PRIO, ETH_P_ALL);
    m.attributes = vec![TcAttribute::Kind("u32".into()), TcAttribute::Options(opts)];
    m
}

fn redirect_target(opts: &[TcOption]) -> Option<u32> {
    opts.iter().find_map(|o| match o {
        TcOption::U32(TcFilterU32Option::Action(actions)) => actions.iter().find_map(|a| {
            a.attributes.iter().find_map(|attr| match attr {
                TcActionAttribute::Options(aopts) => aopts.iter().find_map(|ao| match ao {
                    TcActionOption::Mirror(TcActionMirrorOption::Parms(m))
                        if m.eaction == TcMirrorActionType::EgressRedir =>
                    {
                        Some(m.ifindex)
                    }
                    _ => None,
                }),
                _ => None,
            })
        }),
        _ => None,
    })
}

fn filter_from_msg(m: &TcMessage) -> Option<Filter> {
    let kind = m.attributes.iter().find_map(|a| match a {
        TcAttribute::Kind(k) => Some(k.clone()),
        _ => None,
    })?;
    let redirect = m.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(o) => redirect_target(o),
        _ => None,
    });
    Some(Filter {
        kind,
        prio: (m.header.info >> 16) as u16,
        protocol: u16::from_be(m.header.info as u16),
        redirect,
    })
}

fn tc_index(index: u32) -> Result<i32> {
    i32::try_from(index).map_err(|_| Error::invalid("link index", index, "too large for a tc message"))
}

impl Handle {
    /// `tc filter add dev DEV parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1
    /// action mirred egress redirect dev TARGET`: everything arriving on `index` leaves
    /// through `target` (an ifb, whose egress can then be shaped).
    pub fn filter_add_ingress_redirect(&self, index: u32, target: u32) -> Result<()> {
        let msg = build_redirect(tc_index(index)?, INGRESS_HANDLE, target);
        self.request(RouteNetlinkMessage::NewTrafficFilter(msg), NLM_F_CREATE | NLM_F_EXCL).map(drop).map_err(
            |f| {
                let what =
                    format!("add ingress redirect from {} to {}", self.label(index), self.label(target));
                self.fail(what, f)
            },
        )
    }

    /// `tc filter show dev DEV parent PARENT` (e.g. [`crate::tc::INGRESS_HANDLE`]).
    pub fn filter_list(&self, index: u32, parent: u32) -> Result<Vec<Filter>> {
        let mut req = TcMessage::with_index(tc_index(index)?);
        req.header.parent = TcHandle::from(parent);
        let replies = self
            .dump(RouteNetlinkMessage::GetTrafficFilter(req))
            .map_err(|f| self.fail(format_args!("list filters of {}", self.label(index)), f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewTrafficFilter(m) => filter_from_msg(m),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_packs_prio_and_network_order_protocol() {
        assert_eq!(filter_info(1, ETH_P_ALL), 0x0001_0300);
    }

    #[test]
    fn redirect_round_trips() {
        let m = build_redirect(4, INGRESS_HANDLE, 9);
        let f = filter_from_msg(&m).unwrap();
        assert_eq!(f, Filter { kind: "u32".into(), prio: 1, protocol: ETH_P_ALL, redirect: Some(9) });
        assert_eq!(u32::from(m.header.parent), 0xffff_0000);
    }
}
