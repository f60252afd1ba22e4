//! One NETLINK_NETFILTER socket: batches sent as one transaction with a reply per change,
//! targeted element gets, and dumps of one table's objects. The socket stays bound to the
//! network namespace it was opened in, whichever thread uses it.

use std::io;
use std::path::PathBuf;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use netns::{NetNs, OsError};
use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};

use super::batch::Batch;
use super::wire::reader::{Message, Messages, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR};
use super::wire::{self, Query};

/// Why talking to nf_tables (or conntrack) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("open netfilter netlink socket{}: {source}", in_ns(.ns))]
    Socket { ns: Option<PathBuf>, source: io::Error },
    #[error(transparent)]
    Netns(#[from] netns::Error),
    #[error("netfilter netlink socket: {0}")]
    Io(#[from] io::Error),
    /// The kernel refused `op` with `errno` (and its extended-ack text).
    #[error("{op}: {}{}", OsError(Errno::from_raw(*errno)), detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel { op: String, errno: i32, detail: Option<String> },
    /// A table, rule or element that cannot be expressed (a bug, or bad input let through).
    #[error("invalid nftables object: {0}")]
    Invalid(String),
    #[error("decode netlink reply: {0}")]
    Decode(String),
    #[error("{0} was interrupted by concurrent changes 5 times in a row")]
    DumpInterrupted(String),
    #[error("lock {path}: {source}")]
    Lock { path: String, source: io::Error },
}

impl Error {
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io(e) | Error::Socket { source: e, .. } => e.raw_os_error(),
            _ => None,
        }
    }

    /// A table, chain, set or element that is not there.
    pub fn is_missing(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }

    /// A key (or object) that already exists.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

impl From<wire::objects::Invalid> for Error {
    fn from(e: wire::objects::Invalid) -> Error {
        Error::Invalid(e.0)
    }
}

fn in_ns(ns: &Option<PathBuf>) -> String {
    ns.as_ref().map(|p| format!(" in netns {}", p.display())).unwrap_or_default()
}

/// The kernel's answer to one request: its messages (each a copy, header included), or the
/// errno and extended-ack text it refused the request with.
pub(crate) type Reply = Result<Vec<Vec<u8>>, (i32, Option<String>)>;

const RECV_BUF: usize = 256 * 1024;
const DUMP_ATTEMPTS: u32 = 5;
const REPLY_TIMEOUT_SECS: i64 = 30;

/// A connection to nf_tables in one network namespace.
pub struct Conn {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("seq", &self.seq).finish()
    }
}

impl Conn {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Conn, Error> {
        Conn::new().map_err(|source| Error::Socket { ns: None, source })
    }

    /// A socket inside `ns`, opened on a short-lived thread that entered it.
    pub fn in_netns(ns: &NetNs) -> Result<Conn, Error> {
        ns.run(Conn::new)?.map_err(|source| Error::Socket { ns: Some(ns.path().to_path_buf()), source })
    }

    fn new() -> io::Result<Conn> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_ext_ack(true)?;
        sock.set_cap_ack(true)?;
        // A large batch's replies (one ack per message) must all fit while the kernel works.
        let _ = setsockopt(&sock, sockopt::RcvBufForce, &(4 << 20))
            .or_else(|_| setsockopt(&sock, sockopt::RcvBuf, &(1 << 20)));
        // The kernel answers a batch inside `sendmsg`, so a missing reply means a bug: fail
        // instead of hanging a plugin forever.
        setsockopt(&sock, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(REPLY_TIMEOUT_SECS, 0))
            .map_err(io::Error::from)?;
        Ok(Conn { sock, seq: 0, buf: Vec::with_capacity(RECV_BUF) })
    }

    pub(crate) fn next_seq(&mut self, n: u32) -> u32 {
        let first = self.seq.wrapping_add(1);
        self.seq = self.seq.wrapping_add(n);
        first
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        // The kernel refuses a datagram larger than the socket's send buffer.
        if bytes.len() + 4096 > 200 * 1024 {
            let size = bytes.len() + 64 * 1024;
            setsockopt(&self.sock, sockopt::SndBufForce, &size)
                .or_else(|_| setsockopt(&self.sock, sockopt::SndBuf, &size))
                .map_err(|e| Error::Io(io::Error::from(e)))?;
        }
        let n = self.sock.send(bytes, 0)?;
        if n != bytes.len() {
            return Err(Error::Io(io::Error::other("short netlink send")));
        }
        Ok(())
    }

    /// Receives one datagram into the buffer.
    fn recv(&mut self) -> Result<(), Error> {
        loop {
            self.buf.clear();
            match self.sock.recv(&mut self.buf, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no reply from the kernel",
                    )));
                }
                Err(e) => return Err(Error::Io(e)),
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Applies `batch` as one transaction: all of it or (on any error) none of it. The
    /// error names the change the kernel refused.
    pub fn apply(&mut self, batch: &Batch) -> Result<(), Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let first = self.seq;
        let encoded = wire::encode_batch(batch, first)?;
        self.seq = first.wrapping_add(encoded.seqs.len() as u32 + 2);
        self.send(&encoded.bytes)?;
        let mut pending: std::collections::HashMap<u32, usize> = encoded.seqs.iter().copied().collect();
        let mut failure: Option<Error> = None;
        while !pending.is_empty() {
            self.recv()?;
            for msg in Messages(&self.buf) {
                let msg = msg.map_err(Error::Decode)?;
                let Some((errno, detail)) = msg.error().filter(|_| msg.kind == NLMSG_ERROR) else { continue };
                match pending.remove(&msg.seq) {
                    Some(op) if errno != 0 && failure.is_none() => {
                        let op = batch.ops()[op].describe();
                        failure = Some(Error::Kernel { op, errno, detail });
                    }
                    Some(_) => {}
                    // An error for the batch as a whole (its begin message): nothing else comes.
                    None if errno != 0 && msg.seq == first.wrapping_add(1) => {
                        return Err(Error::Kernel { op: "nftables batch".into(), errno, detail });
                    }
                    None => {}
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Sends `bytes` (requests numbered from `first`, `count` of them) and collects, per
    /// request, its reply messages or its error.
    pub(crate) fn exchange(&mut self, bytes: &[u8], first: u32, count: u32) -> Result<Vec<Reply>, Error> {
        self.send(bytes)?;
        let mut out: Vec<Option<Reply>> = vec![None; count as usize];
        let mut partial: Vec<Vec<Vec<u8>>> = vec![Vec::new(); count as usize];
        while out.iter().any(Option::is_none) {
            self.recv()?;
            for msg in Messages(&self.buf) {
                let msg = msg.map_err(Error::Decode)?;
                let i = msg.seq.wrapping_sub(first) as usize;
                if i >= out.len() || out[i].is_some() {
                    continue;
                }
                match msg.kind {
                    NLMSG_ERROR | NLMSG_DONE => {
                        let (errno, detail) = msg.error().unwrap_or((0, None));
                        out[i] = Some(match errno {
                            0 => Ok(std::mem::take(&mut partial[i])),
                            e => Err((e, detail)),
                        });
                    }
                    _ => partial[i].push(raw_message(&msg)),
                }
            }
        }
        Ok(out.into_iter().map(|r| r.unwrap_or(Ok(Vec::new()))).collect())
    }

    /// One request answered by messages and an ack (or an error).
    pub(crate) fn request(&mut self, bytes_for: impl FnOnce(u32) -> Vec<u8>) -> Result<Reply, Error> {
        let seq = self.next_seq(1);
        let bytes = bytes_for(seq);
        Ok(self.exchange(&bytes, seq, 1)?.pop().unwrap_or(Ok(Vec::new())))
    }

    /// A dump, retried while the kernel flags it as interrupted; `what` names it in errors.
    pub(crate) fn dump(&mut self, what: &str, bytes_for: impl Fn(u32) -> Vec<u8>) -> Result<Reply, Error> {
        for _ in 0..DUMP_ATTEMPTS {
            let reply = self.request(&bytes_for)?;
            let interrupted = match &reply {
                Ok(msgs) => {
                    msgs.iter().any(|m| Messages(m).flatten().any(|m| m.flags & NLM_F_DUMP_INTR != 0))
                }
                Err(_) => false,
            };
            if !interrupted {
                return Ok(reply);
            }
        }
        Err(Error::DumpInterrupted(what.to_string()))
    }

    /// A get or dump of one table's objects; `None` when the table (or set) is missing.
    pub(crate) fn query(&mut self, t: &super::TableId, q: Query<'_>) -> Result<Option<Vec<Vec<u8>>>, Error> {
        let what = format!("{q:?} of table {t}");
        let reply = match q {
            Query::Table | Query::Set(_) => self.request(|seq| wire::encode_query(t, q, seq))?,
            _ => self.dump(&what, |seq| wire::encode_query(t, q, seq))?,
        };
        match reply {
            Ok(msgs) => Ok(Some(msgs)),
            Err((libc::ENOENT, _)) => Ok(None),
            Err((errno, detail)) => Err(Error::Kernel { op: format!("get {what}"), errno, detail }),
        }
    }
}

/// A copy of one message (header included), so it outlives the receive buffer.
fn raw_message(msg: &Message<'_>) -> Vec<u8> {
    let len = 16 + msg.payload.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&msg.kind.to_ne_bytes());
    out.extend_from_slice(&msg.flags.to_ne_bytes());
    out.extend_from_slice(&msg.seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(msg.payload);
    out
}
