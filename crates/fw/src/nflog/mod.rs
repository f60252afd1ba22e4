//! nfnetlink_log (NFLOG): the packets an nftables `log group N` statement copies to user
//! space, read from a NETLINK_NETFILTER socket bound to the group ([`Listener`]).
//!
//! Parsing is pure ([`parse_datagram`], [`parse_packet`], [`Tuple::parse`]) and tested on
//! byte vectors captured from the kernel. Only what flow logs need is read: the prefix (which
//! rule logged), the timestamp, the interfaces, and the packet's network and transport headers
//! (copied up to [`COPY_RANGE`] bytes).
//!
//! Written here rather than taken from netlink-packet-netfilter: that crate pins an older
//! netlink-packet-core than the rest of the workspace, and the wire format is four message
//! kinds over the netlink reader [`crate::nft`] already has.

pub(crate) mod listen;
mod tuple;

use std::time::{Duration, SystemTime};

pub use listen::{Listener, Received};
pub use tuple::{Tuple, TupleError};

use crate::nft::wire::reader::{Messages, NLMSG_ERROR};

/// `NFNL_SUBSYS_ULOG`: the subsystem in the high byte of the message type.
pub(crate) const SUBSYS_ULOG: u16 = 4;
const MSG_PACKET: u16 = 0;
const NFULA_PACKET_HDR: u16 = 1;
const NFULA_TIMESTAMP: u16 = 3;
const NFULA_IFINDEX_INDEV: u16 = 4;
const NFULA_IFINDEX_OUTDEV: u16 = 5;
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PREFIX: u16 = 10;

/// The group twill's tables log to (the policy table, the plugins' spoof checks) and twilld
/// listens on. Far from the small numbers ulogd and hand-written rules tend to use.
pub const TWILL_GROUP: u16 = 6120;

/// The prefix of packets the plugins' spoof checks drop, `KIND` naming the check (`mac`,
/// `ip4`, `ip6`, `arp`, `nd`, `router`).
pub fn spoof_prefix(kind: &str) -> String {
    format!("twill denied spoof {kind}")
}

/// How many bytes of each packet the kernel copies: enough for an IPv6 header, a few
/// extension headers and the ports.
pub const COPY_RANGE: u32 = 160;

/// One logged packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The `log prefix` of the rule that logged it.
    pub prefix: String,
    /// The ether type of the packet (`0x0800` IPv4, `0x86dd` IPv6, `0x0806` ARP).
    pub hw_protocol: u16,
    /// The netfilter hook number it was logged on.
    pub hook: u8,
    /// When the packet arrived, when the kernel had stamped it.
    pub timestamp: Option<SystemTime>,
    pub indev: Option<u32>,
    pub outdev: Option<u32>,
    /// The network header onwards, cut to the copy range.
    pub payload: Vec<u8>,
}

/// A message that is not a well-formed logged packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("nflog datagram: {0}")]
    Datagram(String),
    #[error("nflog message without {0}")]
    Missing(&'static str),
    #[error("nflog socket: kernel error {0}")]
    Kernel(i32),
}

/// The packets of one datagram; messages that are not packets (acks) are skipped.
pub fn parse_datagram(buf: &[u8]) -> Vec<Result<Packet, ParseError>> {
    let mut out = Vec::new();
    for msg in Messages(buf) {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                out.push(Err(ParseError::Datagram(e)));
                break;
            }
        };
        if msg.kind == NLMSG_ERROR {
            match msg.error() {
                Some((0, _)) | None => {}
                Some((errno, _)) => out.push(Err(ParseError::Kernel(errno))),
            }
            continue;
        }
        if msg.kind == (SUBSYS_ULOG << 8) | MSG_PACKET {
            out.push(parse_packet(msg.attrs()));
        }
    }
    out
}

/// A packet from the attributes of an `NFULNL_MSG_PACKET` message.
pub fn parse_packet(attrs: crate::nft::wire::reader::Attrs<'_>) -> Result<Packet, ParseError> {
    let hdr = attrs.get(NFULA_PACKET_HDR).ok_or(ParseError::Missing("NFULA_PACKET_HDR"))?;
    let hdr = hdr.data.get(..3).ok_or(ParseError::Missing("NFULA_PACKET_HDR"))?;
    let prefix = attrs.get(NFULA_PREFIX).map(|a| a.str()).unwrap_or_default();
    let payload = attrs.get(NFULA_PAYLOAD).map(|a| a.data.to_vec()).unwrap_or_default();
    let timestamp = attrs.get(NFULA_TIMESTAMP).and_then(|a| {
        let secs = u64::from_be_bytes(a.data.get(..8)?.try_into().ok()?);
        let usecs = u64::from_be_bytes(a.data.get(8..16)?.try_into().ok()?);
        // Checked: a timestamp past what SystemTime holds is dropped, not a panic (fuzz).
        let since = Duration::from_secs(secs).checked_add(Duration::from_micros(usecs))?;
        SystemTime::UNIX_EPOCH.checked_add(since)
    });
    Ok(Packet {
        prefix,
        hw_protocol: u16::from_be_bytes([hdr[0], hdr[1]]),
        hook: hdr[2],
        timestamp,
        indev: attrs.get(NFULA_IFINDEX_INDEV).and_then(|a| a.u32()),
        outdev: attrs.get(NFULA_IFINDEX_OUTDEV).and_then(|a| a.u32()),
        payload,
    })
}

#[cfg(test)]
mod tests;
