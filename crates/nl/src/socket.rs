//! The request/ack/dump exchange over one NETLINK_ROUTE socket: sequence numbers, acks,
//! multi-part dumps, extended-ack messages and the `NLM_F_DUMP_INTR` retry.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkBuffer,
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::Failure;

/// How often one dump is attempted before giving up when the kernel keeps flagging it as
/// interrupted (the table changed while it was being walked).
pub(crate) const MAX_DUMP_ATTEMPTS: u32 = 5;

/// `NLMSGERR_ATTR_MSG` from `<linux/netlink.h>`: the extended-ack text.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const RECV_BUF: usize = 64 * 1024;

/// Where netlink bytes go to and come from: the kernel, or a scripted fake in unit tests.
pub(crate) trait Transport: Send {
    fn send(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Receives one datagram into `buf`, replacing its contents.
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<()>;
}

/// A kernel NETLINK_ROUTE socket.
pub(crate) struct KernelSocket(Socket);

impl KernelSocket {
    /// Opens a socket in the calling thread's network namespace; it stays bound to that
    /// namespace for its whole life, whichever thread uses it later.
    pub(crate) fn open() -> io::Result<KernelSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Strict checking makes the kernel honour filters in dump requests and reject
        // malformed headers instead of silently ignoring them.
        sock.set_netlink_get_strict_chk(true)?;
        sock.set_ext_ack(true)?;
        sock.set_cap_ack(true)?;
        Ok(KernelSocket(sock))
    }
}

impl Transport for KernelSocket {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        let n = self.0.send(buf, 0)?;
        if n != buf.len() {
            return Err(io::Error::other("short netlink send"));
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        loop {
            buf.clear();
            buf.reserve(RECV_BUF);
            let want = match self.0.recv(buf, libc::MSG_PEEK | libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            buf.clear();
            buf.reserve(want);
            match self.0.recv(buf, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            return Ok(());
        }
    }
}

/// One socket with its sequence counter and receive buffer.
pub(crate) struct Conn {
    transport: Box<dyn Transport>,
    seq: u32,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(transport: Box<dyn Transport>) -> Conn {
        Conn { transport, seq: 0, buf: Vec::new() }
    }

    /// Sends a request with `NLM_F_ACK` (plus `flags`) and returns the messages that came
    /// back before the ack (a `RTM_GET*` of one object answers with it).
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Failure> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        Ok(self.collect(seq)?.0)
    }

    /// Dumps, retrying up to [`MAX_DUMP_ATTEMPTS`] times while the kernel marks the dump as
    /// interrupted, so callers never see a torn table.
    pub(crate) fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, Failure> {
        for _ in 0..MAX_DUMP_ATTEMPTS {
            let seq = self.send(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            let (msgs, interrupted) = self.collect(seq)?;
            if !interrupted {
                return Ok(msgs);
            }
        }
        Err(Failure::DumpInterrupted(MAX_DUMP_ATTEMPTS))
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, Failure> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.transport.send(&bytes)?;
        Ok(self.seq)
    }

    /// Reads replies to `seq` until its ack, error or `NLMSG_DONE`. Returns the payload
    /// messages and whether any of them carried `NLM_F_DUMP_INTR`. Messages with other
    /// sequence numbers (leftovers of an abandoned exchange) are skipped.
    fn collect(&mut self, seq: u32) -> Result<(Vec<RouteNetlinkMessage>, bool), Failure> {
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            self.transport.recv(&mut self.buf)?;
            let mut off = 0;
            while off < self.buf.len() {
                let (msg, len) = parse_one(&self.buf[off..])?;
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
                let flags = msg.header.flags;
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(done) if done.code < 0 => {
                        return Err(Failure::Kernel {
                            errno: -done.code,
                            detail: extack_message(&done.extended_ack),
                        });
                    }
                    NetlinkPayload::Done(_) => return Ok((out, interrupted)),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok((out, interrupted)),
                        Some(code) => {
                            return Err(Failure::Kernel {
                                errno: -code.get(),
                                detail: error_detail(flags, &e.header),
                            });
                        }
                    },
                    NetlinkPayload::Overrun(_) => {
                        return Err(Failure::Decode("netlink overrun".into()));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Parses the netlink message at the start of `buf`; returns it and its unaligned length.
fn parse_one(buf: &[u8]) -> Result<(NetlinkMessage<RouteNetlinkMessage>, usize), Failure> {
    let nb = NetlinkBuffer::new_checked(buf).map_err(|e| Failure::Decode(e.to_string()))?;
    let len = nb.length() as usize;
    if len < NLMSG_HDRLEN || len > buf.len() {
        return Err(Failure::Decode(format!("bad message length {len}")));
    }
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len])
        .map_err(|e| Failure::Decode(e.to_string()))?;
    Ok((msg, len))
}

/// The extended-ack text of an `NLMSG_ERROR`: its TLVs follow the echoed request, which is
/// only the request's header when the kernel capped it (`NETLINK_CAP_ACK`).
fn error_detail(flags: u16, echoed: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let skip = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let len = echoed.get(..4)?.try_into().map(u32::from_ne_bytes).ok()? as usize;
        (len + 3) & !3
    };
    extack_message(echoed.get(skip..)?)
}

fn extack_message(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs).filter_map(|nla| nla.ok()).find(|nla| nla.kind() == NLMSGERR_ATTR_MSG).map(
        |nla| {
            let v = nla.value();
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        },
    )
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
