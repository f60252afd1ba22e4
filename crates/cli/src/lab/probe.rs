//! One connectivity check: from inside a namespace, connect to a lab server (or send it a
//! datagram) and read its [`Reply`] within [`TIMEOUT`]. A connection that is refused, dropped
//! or unanswered is a [`Verdict`], not an error; an error means the check could not be made
//! at all (no such namespace, no SCTP in this kernel).

use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::NetNs;
use socket2::{Domain, Socket, Type};

use super::wire::{Protocol, Reply};

/// How long a probe waits to connect, and then for the answer.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// The outcome of a probe that could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Connected(Reply),
    /// Why not: refused, timed out, an unexpected answer.
    Failed(String),
}

/// Probes `to` over `proto` from inside `from`.
pub fn probe(from: &NetNs, to: SocketAddr, proto: Protocol) -> Result<Verdict> {
    let outcome = from.run(|| match proto {
        Protocol::Tcp => stream(to, None),
        Protocol::Sctp => stream(to, Some(socket2::Protocol::from(libc::IPPROTO_SCTP))),
        Protocol::Udp => datagram(to),
    })?;
    let answer = match outcome {
        Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => {
            bail!("cannot probe over {proto}: this kernel has no {proto} sockets ({e})")
        }
        Err(e) => {
            return Err(e).with_context(|| format!("open a {proto} socket in {}", from.path().display()));
        }
        Ok(answer) => answer,
    };
    Ok(match answer {
        Ok(text) => match Reply::parse(&text) {
            Some(reply) => Verdict::Connected(reply),
            None => Verdict::Failed(format!("unexpected answer {text:?}")),
        },
        Err(e) => Verdict::Failed(describe(&e)),
    })
}

/// The outer result fails when no socket could be made; the inner one is the exchange.
type Exchange = std::io::Result<std::io::Result<String>>;

fn stream(to: SocketAddr, proto: Option<socket2::Protocol>) -> Exchange {
    let sock = Socket::new(Domain::for_address(to), Type::STREAM, proto)?;
    Ok((|| {
        sock.connect_timeout(&to.into(), TIMEOUT)?;
        sock.set_read_timeout(Some(TIMEOUT))?;
        let mut text = String::new();
        std::net::TcpStream::from(sock).read_to_string(&mut text)?;
        Ok(text)
    })())
}

/// A datagram and its answer; an unanswered datagram (a policy dropped it) is a failed
/// exchange like a refused connection, not a probe that could not be made.
fn datagram(to: SocketAddr) -> Exchange {
    let local: SocketAddr =
        if to.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local)?;
    Ok((|| {
        sock.connect(to)?;
        sock.set_read_timeout(Some(TIMEOUT))?;
        sock.send(b"probe\n")?;
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })())
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("no answer within {}s", TIMEOUT.as_secs()),
        _ => e.to_string(),
    }
}
