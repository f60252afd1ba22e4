//! Forgetting conntrack entries over ctnetlink, what `conntrack -D -p udp --orig-port-dst PORT
//! [--reply-src POD]` does, without running it: UDP "connections" created before a port
//! mapping existed (or towards a pod that is gone) would keep bypassing it until they time
//! out. The kernel filters the dump where it can (5.8+); the same filter runs here, so an
//! older kernel that ignores it only makes the dump larger.

use std::net::IpAddr;

use crate::nft::Conn;
use crate::nft::conn::Error;
use crate::nft::wire::reader::{Attrs, Messages};
use crate::nft::wire::writer::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, Writer};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_FILTER: u16 = 25;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_REPLY_FLAGS: u16 = 2;
const FILTER_IP_SRC: u32 = 1 << 0;
const FILTER_PROTO_NUM: u32 = 1 << 3;
const FILTER_PROTO_DST_PORT: u32 = 1 << 5;
const UDP: u8 = 17;

/// UDP traffic to a port of the node (of one family; to one pod when known).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpFlow {
    pub port: u16,
    pub v6: bool,
    pub pod: Option<IpAddr>,
}

impl UdpFlow {
    fn af(&self) -> u8 {
        if self.v6 { 10 } else { 2 }
    }
}

fn ct_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg
}

fn dump_request(flow: &UdpFlow, seq: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin_msg(ct_type(IPCTNL_MSG_CT_GET), NLM_F_REQUEST | NLM_F_DUMP, seq, flow.af(), 0);
    w.begin_nest(CTA_TUPLE_ORIG);
    w.begin_nest(CTA_TUPLE_PROTO);
    w.put(CTA_PROTO_NUM, &[UDP]);
    w.put(CTA_PROTO_DST_PORT, &flow.port.to_be_bytes());
    w.end_nest();
    w.end_nest();
    if let Some(pod) = flow.pod {
        w.begin_nest(CTA_TUPLE_REPLY);
        w.begin_nest(CTA_TUPLE_IP);
        match pod {
            IpAddr::V4(a) => w.put(CTA_IP_V4_SRC, &a.octets()),
            IpAddr::V6(a) => w.put(CTA_IP_V6_SRC, &a.octets()),
        }
        w.end_nest();
        w.end_nest();
    }
    w.begin_nest(CTA_FILTER);
    // The filter's flags are host-order u32s, unlike the big-endian attributes around them.
    w.put(CTA_FILTER_ORIG_FLAGS, &(FILTER_PROTO_NUM | FILTER_PROTO_DST_PORT).to_ne_bytes());
    if flow.pod.is_some() {
        w.put(CTA_FILTER_REPLY_FLAGS, &FILTER_IP_SRC.to_ne_bytes());
    }
    w.end_nest();
    w.end_msg();
    w.into_bytes()
}

/// Whether a dumped entry (its attributes) belongs to `flow`.
fn matches(flow: &UdpFlow, entry: Attrs<'_>) -> bool {
    let Some(orig) = entry.get(CTA_TUPLE_ORIG) else { return false };
    let Some(proto) = orig.nested().get(CTA_TUPLE_PROTO) else { return false };
    let num = proto.nested().get(CTA_PROTO_NUM).and_then(|a| a.data.first().copied());
    let port = proto
        .nested()
        .get(CTA_PROTO_DST_PORT)
        .and_then(|a| Some(u16::from_be_bytes(a.data.get(..2)?.try_into().ok()?)));
    if num != Some(UDP) || port != Some(flow.port) {
        return false;
    }
    let Some(pod) = flow.pod else { return true };
    let reply_src = entry.get(CTA_TUPLE_REPLY).and_then(|r| r.nested().get(CTA_TUPLE_IP)).and_then(|ip| {
        let (kind, len) = if pod.is_ipv4() { (CTA_IP_V4_SRC, 4) } else { (CTA_IP_V6_SRC, 16) };
        let data = ip.nested().get(kind)?.data.get(..len)?;
        Some(match len {
            4 => IpAddr::from(<[u8; 4]>::try_from(data).ok()?),
            _ => IpAddr::from(<[u8; 16]>::try_from(data).ok()?),
        })
    });
    reply_src == Some(pod)
}

/// A delete of the entry, named by its original tuple (and zone and id, so a new entry
/// that reused the tuple meanwhile is not hit).
fn delete_request(w: &mut Writer, af: u8, entry: Attrs<'_>, seq: u32) {
    w.begin_msg(ct_type(IPCTNL_MSG_CT_DELETE), NLM_F_REQUEST | NLM_F_ACK, seq, af, 0);
    for a in entry.filter(|a| matches!(a.kind, CTA_TUPLE_ORIG | CTA_ZONE | CTA_ID)) {
        match a.kind {
            CTA_TUPLE_ORIG => {
                w.begin_nest(CTA_TUPLE_ORIG);
                w.put_raw(a.data);
                w.end_nest();
            }
            kind => w.put(kind, a.data),
        }
    }
    w.end_msg();
}

/// Deletes the conntrack entries of `flows`; returns how many went. Entries that vanish
/// meanwhile are fine.
pub fn delete_udp_flows(conn: &mut Conn, flows: &[UdpFlow]) -> Result<usize, Error> {
    let mut deleted = 0;
    for flow in flows {
        let dump =
            conn.dump(&format!("conntrack dump of udp port {}", flow.port), |seq| dump_request(flow, seq))?;
        let msgs = dump.map_err(|(errno, detail)| Error::Kernel {
            op: format!("list conntrack entries of udp port {}", flow.port),
            errno,
            detail,
        })?;
        let mut w = Writer::new();
        let mut count = 0;
        let first = conn.next_seq(0).wrapping_add(1);
        for raw in &msgs {
            for m in Messages(raw).flatten().filter(|m| matches(flow, m.attrs())) {
                delete_request(&mut w, flow.af(), m.attrs(), first.wrapping_add(count));
                count += 1;
            }
        }
        if count == 0 {
            continue;
        }
        conn.next_seq(count);
        for reply in conn.exchange(&w.into_bytes(), first, count)? {
            match reply {
                Ok(_) => deleted += 1,
                Err((libc::ENOENT, _)) => {}
                Err((errno, detail)) => {
                    let op = format!("delete conntrack entry of udp port {}", flow.port);
                    return Err(Error::Kernel { op, errno, detail });
                }
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::wire::reader::Messages;

    #[test]
    fn the_dump_request_carries_the_filter() {
        let flow = UdpFlow { port: 5353, v6: false, pod: Some("10.88.0.2".parse().unwrap()) };
        let bytes = dump_request(&flow, 1);
        let msg = Messages(&bytes).next().unwrap().unwrap();
        assert_eq!(msg.kind, 0x0101);
        assert_eq!(msg.payload[0], 2);
        let attrs = msg.attrs();
        let filter = attrs.get(CTA_FILTER).unwrap().nested();
        assert_eq!(
            filter.get(CTA_FILTER_ORIG_FLAGS).unwrap().data,
            (FILTER_PROTO_NUM | FILTER_PROTO_DST_PORT).to_ne_bytes()
        );
        // The same request's tuples are what `matches` accepts.
        assert!(matches(&flow, attrs));
        assert!(!matches(&UdpFlow { port: 53, ..flow }, attrs));
        assert!(!matches(&UdpFlow { pod: Some("10.88.0.3".parse().unwrap()), ..flow }, attrs));
        assert!(matches(&UdpFlow { pod: None, ..flow }, attrs));
    }
}
