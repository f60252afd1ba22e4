//! `twill lab probe FROM TO --port P [--protocol tcp|udp|sctp] [--ipv6]`: one probe, printed
//! with what the server answered (who it is, and the client address it saw).

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;
use netns::NetNs;

use super::names::Names;
use super::probe::{self, Verdict};
use super::state::{self, LabState};
use super::target::Target;
use super::wire::Protocol;

/// `TO` is a lab place or a literal address.
fn destination(state: &LabState, to: &str, v6: bool) -> Result<IpAddr> {
    if let Ok(ip) = to.parse::<IpAddr>() {
        return Ok(ip);
    }
    to.parse::<Target>()?.address(state, v6)
}

/// Probes and prints the outcome; true when connected.
pub fn show(names: &Names, from: &Target, to: &str, port: u16, proto: Protocol, v6: bool) -> Result<bool> {
    let state = state::load_running(names)?;
    let ns = NetNs::open(netns::named_path(&from.netns(&state, names)?))?;
    let addr = SocketAddr::new(destination(&state, to, v6)?, port);
    match probe::probe(&ns, addr, proto)? {
        Verdict::Connected(reply) => {
            println!("{from} -> {to} ({proto} {addr}): connected");
            println!("  answer: {reply}");
            println!("  {to} saw the client as {}", reply.client.ip());
            Ok(true)
        }
        Verdict::Failed(why) => {
            println!("{from} -> {to} ({proto} {addr}): NOT connected: {why}");
            Ok(false)
        }
    }
}
