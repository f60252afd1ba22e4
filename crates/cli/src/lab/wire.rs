//! What the lab's server answers and the probe reads: one line of `key=value` words naming
//! the server, the protocol and port, and the client address the server saw — which is how
//! tests tell a pod-to-pod connection without NAT from a masqueraded one.

use std::fmt;
use std::net::SocketAddr;

/// Transport protocols the server listens on and the probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    fn parse(s: &str) -> Option<Protocol> {
        [Protocol::Tcp, Protocol::Udp, Protocol::Sctp].into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The ports every lab server listens on, as the Kubernetes network policy e2e tests do.
pub const PORTS: [u16; 2] = [80, 81];

/// The Kubernetes e2e name of a server port: `serve-80-tcp`.
pub fn port_name(port: u16, proto: Protocol) -> String {
    format!("serve-{port}-{proto}")
}

/// One answer of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `NS/NAME` of the pod, or `outside`.
    pub who: String,
    pub node: Option<String>,
    pub proto: Protocol,
    pub port: u16,
    /// The peer address as the server saw it (IPv4-mapped addresses unmapped).
    pub client: SocketAddr,
}

impl Reply {
    /// Parses a line written by [`Reply`]'s `Display`.
    pub fn parse(line: &str) -> Option<Reply> {
        let mut who = None;
        let mut node = None;
        let mut proto = None;
        let mut port = None;
        let mut client = None;
        for word in line.split_whitespace() {
            match word.split_once('=')? {
                ("who", v) => who = Some(v.to_string()),
                ("node", v) => node = Some(v.to_string()),
                ("proto", v) => proto = Protocol::parse(v),
                ("port", v) => port = v.parse().ok(),
                ("client", v) => client = v.parse().ok(),
                _ => {}
            }
        }
        Some(Reply { who: who?, node, proto: proto?, port: port?, client: client? })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "who={}", self.who)?;
        if let Some(node) = &self.node {
            write!(f, " node={node}")?;
        }
        write!(f, " proto={} port={} client={}", self.proto, self.port, self.client)
    }
}

/// `::ffff:10.0.0.1` (how a dual-stack socket shows an IPv4 peer) as `10.0.0.1`.
pub fn unmapped(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let r = Reply {
            who: "a/p1".into(),
            node: Some("node-2".into()),
            proto: Protocol::Udp,
            port: 81,
            client: "10.244.1.3:40000".parse().unwrap(),
        };
        assert_eq!(r.to_string(), "who=a/p1 node=node-2 proto=udp port=81 client=10.244.1.3:40000");
        assert_eq!(Reply::parse(&r.to_string()), Some(r.clone()));
        let v6 = Reply { node: None, client: "[fd00:10:244::5]:1".parse().unwrap(), ..r };
        assert_eq!(Reply::parse(&format!("{v6}\n")), Some(v6));
        assert_eq!(Reply::parse("who=x proto=tcp port=80"), None);
        assert_eq!(Reply::parse("hello"), None);
    }

    #[test]
    fn mapped_addresses_are_unmapped_and_ports_named() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        assert_eq!(unmapped(mapped), "10.0.0.1:5".parse().unwrap());
        assert_eq!(port_name(80, Protocol::Sctp), "serve-80-sctp");
    }
}
