//! Forged traffic for the spoofing tests, sent from inside a pod's namespace by the test
//! itself (as root): UDP datagrams with someone else's source address (an IP_TRANSPARENT
//! socket may bind any address), gratuitous ARP replies and unsolicited neighbour
//! advertisements claiming someone else's address for this pod's MAC. A receiver records
//! what reaches a pod. Nothing leaves the namespaces the tests created.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netns::NetNs;

fn last_os_error(what: &str) -> std::io::Error {
    let e = std::io::Error::last_os_error();
    std::io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn setsockopt_int(fd: i32, level: i32, name: i32, value: i32) -> std::io::Result<()> {
    // SAFETY: fd is an open socket; the option value is a valid int for its whole size.
    let rc = unsafe {
        libc::setsockopt(fd, level, name, (&value as *const i32).cast(), std::mem::size_of::<i32>() as u32)
    };
    if rc == 0 { Ok(()) } else { Err(last_os_error("setsockopt")) }
}

/// Sends `count` datagrams with `payload` from `from` (not necessarily ours) to `to`, from
/// inside `ns`.
pub fn udp_from(
    ns: &NetNs,
    from: IpAddr,
    to: SocketAddr,
    payload: &str,
    count: usize,
) -> std::io::Result<()> {
    ns.run(|| -> std::io::Result<()> {
        let domain = if from.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
        let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        let (level, name) = match from {
            IpAddr::V4(_) => (libc::SOL_IP, libc::IP_TRANSPARENT),
            IpAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_TRANSPARENT),
        };
        setsockopt_int(sock.as_raw_fd(), level, name, 1)?;
        sock.bind(&SocketAddr::new(from, 0).into())?;
        for _ in 0..count {
            sock.send_to(payload.as_bytes(), &to.into())?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })
    .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// What reached a UDP port in a namespace: (source, payload).
pub struct Receiver {
    got: Arc<Mutex<Vec<(IpAddr, String)>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `[::]:port` (IPv4 too) inside `ns`.
    pub fn start(ns: &NetNs, port: u16) -> Receiver {
        let sock = ns
            .run(|| UdpSocket::bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)))
            .expect("enter netns")
            .expect("bind receiver");
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let ip = match from.ip() {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
                        v4 => v4,
                    };
                    g.lock().unwrap().push((ip, String::from_utf8_lossy(&buf[..n]).into_owned()));
                }
            }
        });
        Receiver { got, stop, thread: Some(thread) }
    }

    /// Whether a datagram with `payload` arrived within `wait`.
    pub fn saw(&self, payload: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if self.got.lock().unwrap().iter().any(|(_, p)| p == payload) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A gratuitous ARP reply on `ifname` of `ns`: "`claimed` is at `mac`" (broadcast).
pub fn arp_claim(ns: &NetNs, ifname: &str, mac: [u8; 6], claimed: [u8; 4]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(42);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&0x0806u16.to_be_bytes());
    frame.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&claimed);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&claimed);
    send_frame(ns, ifname, &frame)
}

fn send_frame(ns: &NetNs, ifname: &str, frame: &[u8]) -> std::io::Result<()> {
    let ifname = std::ffi::CString::new(ifname).map_err(std::io::Error::other)?;
    ns.run(|| -> std::io::Result<()> {
        // SAFETY: plain syscalls on a socket this closure owns; the address structure is
        // zeroed and filled before use and outlives the call.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            if fd < 0 {
                return Err(last_os_error("packet socket"));
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let index = libc::if_nametoindex(ifname.as_ptr());
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = index as i32;
            addr.sll_halen = 6;
            let sent = libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if sent < 0 { Err(last_os_error("send frame")) } else { Ok(()) }
        }
    })
    .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// An unsolicited neighbour advertisement on `ifname` of `ns` to all nodes: "`claimed` is
/// at `mac`" (override set).
pub fn na_claim(ns: &NetNs, ifname: &str, mac: [u8; 6], claimed: Ipv6Addr) -> std::io::Result<()> {
    let mut msg = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    msg.extend_from_slice(&claimed.octets());
    msg.extend_from_slice(&[2, 1]);
    msg.extend_from_slice(&mac);
    let ifname = std::ffi::CString::new(ifname).map_err(std::io::Error::other)?;
    ns.run(|| -> std::io::Result<()> {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::from(libc::SOCK_RAW),
            Some(socket2::Protocol::ICMPV6),
        )?;
        sock.set_multicast_hops_v6(255)?;
        // SAFETY: if_nametoindex reads a NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(ifname.as_ptr()) };
        sock.set_multicast_if_v6(index)?;
        let all_nodes = std::net::SocketAddrV6::new("ff02::1".parse().unwrap(), 0, 0, index);
        sock.send_to(&msg, &all_nodes.into())?;
        Ok(())
    })
    .map_err(|e| std::io::Error::other(e.to_string()))?
}
