//! `twill lab serve` (hidden): the program every lab pod runs, started inside the pod's
//! namespace. It answers on TCP and UDP ports 80 and 81 — and SCTP where the kernel has SCTP
//! sockets — with one [`Reply`] line naming itself and the client address it saw.
//!
//! Sockets are dual-stack (`[::]` with `IPV6_V6ONLY` off), so one socket per port and protocol
//! serves IPv4 and IPv6 clients alike.

use std::io::{ErrorKind, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use clap::Args;
use socket2::{Domain, Socket, Type};

use super::wire::{PORTS, Protocol, Reply, unmapped};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Who this server is (`NS/NAME` of its pod, or `outside`).
    #[arg(long)]
    pub who: String,
    /// The node the pod runs on.
    #[arg(long)]
    pub node: Option<String>,
}

/// What a listener needs to answer a client.
#[derive(Clone)]
struct Identity {
    who: String,
    node: Option<String>,
}

impl Identity {
    fn reply(&self, proto: Protocol, port: u16, client: SocketAddr) -> String {
        let r =
            Reply { who: self.who.clone(), node: self.node.clone(), proto, port, client: unmapped(client) };
        format!("{r}\n")
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let id = Identity { who: args.who.clone(), node: args.node.clone() };
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for port in PORTS {
        let udp: UdpSocket =
            dual_stack(Type::DGRAM, None, port).with_context(|| format!("bind udp/{port}"))?.into();
        threads.push(spawn_datagram(id.clone(), port, udp));
        match listen(Type::STREAM, Some(socket2::Protocol::from(libc::IPPROTO_SCTP)), port) {
            Ok(sctp) => threads.push(spawn_stream(id.clone(), Protocol::Sctp, port, sctp)),
            Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => {
                println!("sctp/{port}: this kernel has no SCTP sockets ({e}); serving tcp and udp only");
            }
            Err(e) => return Err(e).with_context(|| format!("listen on sctp/{port}")),
        }
    }
    // TCP last, the last port last: whoever gets an answer there knows every socket is bound
    // (`twill lab pod add` waits for that).
    for port in PORTS {
        let tcp = listen(Type::STREAM, None, port).with_context(|| format!("listen on tcp/{port}"))?;
        threads.push(spawn_stream(id.clone(), Protocol::Tcp, port, tcp));
    }
    println!("{} serving on ports {PORTS:?}", args.who);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// A bound dual-stack socket on `[::]:port`.
fn dual_stack(ty: Type, proto: Option<socket2::Protocol>, port: u16) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::IPV6, ty, proto)?;
    sock.set_only_v6(false)?;
    sock.set_reuse_address(true)?;
    sock.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    Ok(sock)
}

/// A listening stream socket. SCTP's one-to-one style has TCP's accept/read/write API, so it
/// is served by the same code through the std TCP types.
fn listen(ty: Type, proto: Option<socket2::Protocol>, port: u16) -> std::io::Result<TcpListener> {
    let sock = dual_stack(ty, proto, port)?;
    sock.listen(128)?;
    Ok(sock.into())
}

fn spawn_stream(id: Identity, proto: Protocol, port: u16, listener: TcpListener) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    println!("{proto}/{port}: accept: {e}");
                    continue;
                }
            };
            let answer = conn.peer_addr().map(|peer| id.reply(proto, port, peer));
            if let Err(e) = answer.and_then(|a| conn.write_all(a.as_bytes())) {
                println!("{proto}/{port}: answer: {e}");
            }
        }
    })
}

fn spawn_datagram(id: Identity, port: u16, sock: UdpSocket) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            match sock.recv_from(&mut buf) {
                Ok((_, peer)) => {
                    if let Err(e) = sock.send_to(id.reply(Protocol::Udp, port, peer).as_bytes(), peer) {
                        println!("udp/{port}: answer {peer}: {e}");
                    }
                }
                // An ICMP error for an earlier answer surfaces on the next receive.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => {
                    println!("udp/{port}: receive: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    })
}
