//! A NETLINK_NETFILTER socket bound to one nfnetlink_log group: `nft ... log group N` rules
//! in the socket's network namespace deliver their packets to it.
//!
//! The group is per network namespace and has at most one listener: binding a group another
//! socket holds fails with EBUSY.

use std::io;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::sys::socket::{setsockopt, sockopt};

use super::{COPY_RANGE, Packet, ParseError, SUBSYS_ULOG, parse_datagram};
use crate::nft::wire::reader::{Messages, NLMSG_ERROR};
use crate::nft::wire::writer::{NLM_F_REQUEST, Writer};

const MSG_CONFIG: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFULA_CFG_CMD: u16 = 1;
const NFULA_CFG_MODE: u16 = 2;
const NFULA_CFG_TIMEOUT: u16 = 4;
const NFULA_CFG_QTHRESH: u16 = 5;
const CMD_BIND: u8 = 1;
const COPY_PACKET: u8 = 2;
const RECV_BUF: usize = 64 * 1024;

/// What one [`Listener::recv`] got.
#[derive(Debug)]
pub enum Received {
    Packets(Vec<Result<Packet, ParseError>>),
    /// The socket's buffer overflowed (ENOBUFS): the kernel dropped messages.
    Overrun,
    /// The receive timeout passed without a message.
    Idle,
}

/// A socket bound to one log group.
pub struct Listener {
    sock: Socket,
    group: u16,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("group", &self.group).finish()
    }
}

/// The config request binding `group` and asking for packets cut to [`COPY_RANGE`], flushed
/// after `timeout_cs` hundredths of a second or `qthresh` packets.
pub fn bind_request(group: u16, timeout_cs: u32, qthresh: u32) -> Vec<u8> {
    let mut w = Writer::new();
    w.begin_msg((SUBSYS_ULOG << 8) | MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, 1, 0, group);
    w.put(NFULA_CFG_CMD, &[CMD_BIND]);
    w.end_msg();
    w.begin_msg((SUBSYS_ULOG << 8) | MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, 2, 0, group);
    // struct nfulnl_msg_config_mode is packed: be32 copy_range, u8 mode, u8 pad.
    let mut mode = COPY_RANGE.to_be_bytes().to_vec();
    mode.extend_from_slice(&[COPY_PACKET, 0]);
    w.put(NFULA_CFG_MODE, &mode);
    w.put_u32(NFULA_CFG_TIMEOUT, timeout_cs);
    w.put_u32(NFULA_CFG_QTHRESH, qthresh);
    w.end_msg();
    w.into_bytes()
}

impl Listener {
    /// Binds `group` in the calling thread's network namespace; `recv` returns
    /// [`Received::Idle`] after `poll` without packets.
    pub fn bind(group: u16, poll: std::time::Duration) -> io::Result<Listener> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Bursts of new connections must fit while the agent's thread catches up.
        let _ = setsockopt(&sock, sockopt::RcvBufForce, &(4 << 20))
            .or_else(|_| setsockopt(&sock, sockopt::RcvBuf, &(1 << 20)));
        let timeout = nix::sys::time::TimeVal::new(poll.as_secs() as i64, poll.subsec_micros().into());
        setsockopt(&sock, sockopt::ReceiveTimeout, &timeout).map_err(io::Error::from)?;
        // Batch up to 50 packets or 100 ms: one datagram per burst instead of one per packet.
        sock.send(&bind_request(group, 10, 50), 0)?;
        let mut l = Listener { sock, group, buf: Vec::with_capacity(RECV_BUF) };
        l.await_acks(2)?;
        Ok(l)
    }

    fn await_acks(&mut self, mut pending: usize) -> io::Result<()> {
        while pending > 0 {
            self.buf.clear();
            self.sock.recv(&mut self.buf, 0)?;
            for msg in Messages(&self.buf).flatten().filter(|m| m.kind == NLMSG_ERROR) {
                match msg.error() {
                    Some((0, _)) => pending -= 1,
                    Some((errno, detail)) => {
                        let e = io::Error::from_raw_os_error(errno);
                        let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
                        return Err(io::Error::new(
                            e.kind(),
                            format!("bind nflog group {}: {e}{detail}", self.group),
                        ));
                    }
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// The bytes of the last datagram received (for diagnostics and captured test vectors).
    pub fn last_datagram(&self) -> &[u8] {
        &self.buf
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    /// Waits for the next datagram.
    pub fn recv(&mut self) -> io::Result<Received> {
        loop {
            self.buf.clear();
            match self.sock.recv(&mut self.buf, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::Idle),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Received::Overrun),
                Err(e) => return Err(e),
                Ok(_) => return Ok(Received::Packets(parse_datagram(&self.buf))),
            }
        }
    }
}
