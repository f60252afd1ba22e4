//! `show protocols all`, read into data: every protocol's state and, for BGP sessions, the
//! neighbour, the BGP state and the routes each channel imported and exported. This is what
//! `/metrics`, `/bgp` and `twill lab status` report.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::control::Reply;

/// Code of a protocol's summary line.
const SUMMARY: u16 = 1002;

/// One protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolStatus {
    pub name: String,
    /// `BGP`, `Kernel`, `Static`, `Device`, `Direct`.
    pub proto: String,
    /// `up`, `start`, `down`, `flush`.
    pub state: String,
    pub since: String,
    /// `Established`, `Active`, `Connect`, `Passive`, ... and the last error, for BGP.
    pub info: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpDetail>,
    #[serde(default)]
    pub channels: Vec<ChannelStatus>,
}

/// The BGP part of a session's details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpDetail {
    pub state: String,
    pub neighbor: Option<IpAddr>,
    pub neighbor_as: Option<u32>,
    pub local_as: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One channel (address family) of a protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStatus {
    /// `ipv4`, `ipv6`.
    pub family: String,
    pub state: String,
    pub imported: u64,
    pub exported: u64,
    pub preferred: u64,
}

impl ProtocolStatus {
    pub fn is_bgp(&self) -> bool {
        self.proto == "BGP"
    }

    /// A BGP session that is up.
    pub fn established(&self) -> bool {
        self.is_bgp() && self.state == "up" && self.info.starts_with("Established")
    }

    /// Routes received from the peer and in BIRD's table, over every channel.
    pub fn imported(&self) -> u64 {
        self.channels.iter().map(|c| c.imported).sum()
    }

    /// Routes announced to the peer, over every channel.
    pub fn exported(&self) -> u64 {
        self.channels.iter().map(|c| c.exported).sum()
    }

    /// The configured template of dynamic sessions (`neighbor range`), which never
    /// connects itself.
    pub fn is_dynamic_template(&self) -> bool {
        self.is_bgp()
            && self.bgp.as_ref().is_some_and(|b| b.neighbor.is_none())
            && self.info.starts_with("Passive")
    }
}

/// The protocols in the reply to `show protocols all`.
pub fn parse_protocols(reply: &Reply) -> Vec<ProtocolStatus> {
    let mut out: Vec<ProtocolStatus> = Vec::new();
    for (code, text) in &reply.lines {
        if *code == SUMMARY {
            out.extend(parse_summary(text));
            continue;
        }
        if let Some(p) = out.last_mut() {
            detail(p, text);
        }
    }
    out
}

/// `NAME PROTO TABLE STATE SINCE INFO`; SINCE is one word (`04:44:49.235`) or a date and a
/// time (`timeformat protocol iso long`).
fn parse_summary(text: &str) -> Option<ProtocolStatus> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (name, proto, state) = (words.first()?, words.get(1)?, words.get(3)?);
    let is_date = |w: &&str| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-';
    let since_words = if words.get(4).is_some_and(is_date) && words.len() > 5 { 2 } else { 1 };
    let since = words.get(4..4 + since_words).map(|w| w.join(" ")).unwrap_or_default();
    let info = words.get(4 + since_words..).map(|w| w.join(" ")).unwrap_or_default();
    Some(ProtocolStatus {
        name: name.to_string(),
        proto: proto.to_string(),
        state: state.to_string(),
        since,
        info,
        ..ProtocolStatus::default()
    })
}

/// One detail line (`Key: value`, `Channel ipv4`, `Routes: 1 imported, ...`).
fn detail(p: &mut ProtocolStatus, text: &str) {
    let line = text.trim();
    if let Some(family) = line.strip_prefix("Channel ") {
        p.channels.push(ChannelStatus { family: family.trim().to_string(), ..ChannelStatus::default() });
        return;
    }
    let Some((key, value)) = line.split_once(':') else { return };
    let value = value.trim();
    if let Some(c) = p.channels.last_mut() {
        match key {
            "State" => c.state = value.to_string(),
            "Routes" => (c.imported, c.exported, c.preferred) = route_counts(value),
            _ => {}
        }
        return;
    }
    match key {
        "Description" => p.description = Some(value.to_string()),
        "BGP state" => p.bgp.get_or_insert_with(BgpDetail::default).state = value.to_string(),
        _ => bgp_detail(p, key, value),
    }
}

fn bgp_detail(p: &mut ProtocolStatus, key: &str, value: &str) {
    let Some(b) = p.bgp.as_mut() else { return };
    match key {
        "Neighbor address" => b.neighbor = value.parse().ok(),
        "Neighbor AS" => b.neighbor_as = value.parse().ok(),
        "Local AS" => b.local_as = value.parse().ok(),
        "Last error" => b.last_error = Some(value.to_string()),
        _ => {}
    }
}

/// `1 imported, 2 filtered, 3 exported, 1 preferred` → (imported, exported, preferred).
fn route_counts(value: &str) -> (u64, u64, u64) {
    let mut counts = (0, 0, 0);
    for part in value.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
        let Ok(n) = n.parse() else { continue };
        match what {
            "imported" => counts.0 = n,
            "exported" => counts.1 = n,
            "preferred" => counts.2 = n,
            _ => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show protocols all` of BIRD 2.0.12 with two sessions, as read off the socket.
    fn reply() -> Reply {
        let raw = "\
2002-Name       Proto      Table      State  Since         Info
1002-device1    Device     ---        up     2026-12-07 04:44:20  
1006-
1002-twill_kernel4 Kernel     master4    up     2026-12-07 04:44:20  
1006-  Channel ipv4
     State:          UP
     Table:          master4
     Routes:         1 imported, 1 exported, 0 preferred
1002-mesh4_10_100_0_12 BGP        ---        up     2026-12-07 04:44:24  Established   
1006-  Description:    node node-2
  BGP state:          Established
    Neighbor address: 10.100.0.12
    Neighbor AS:      64512
    Local AS:         64512
    Hold timer:       6.579/9
  Channel ipv4
    State:          UP
    Routes:         1 imported, 1 exported, 1 preferred
  Channel ipv6
    State:          UP
    Routes:         2 imported, 3 filtered, 1 exported, 2 preferred
1002-peer4_10_100_0_254 BGP        ---        start  04:44:39.001  Active        Received: Administrative shutdown
1006-  Description:    BGPPeer outside
  BGP state:          Active
    Neighbor address: 10.100.0.254
    Neighbor AS:      65100
    Local AS:         64512
    Last error:       Received: Administrative shutdown
  Channel ipv4
    State:          DOWN
 
0000 
";
        let mut lines = Vec::new();
        let mut code = 0;
        for l in raw.lines() {
            if let Some(t) = l.strip_prefix(' ') {
                lines.push((code, t.to_string()));
            } else {
                code = l[..4].parse().unwrap();
                lines.push((code, l.get(5..).unwrap_or("").to_string()));
            }
        }
        Reply { code: 0, lines }
    }

    #[test]
    fn sessions_with_their_neighbours_and_routes() {
        let ps = parse_protocols(&reply());
        let names: Vec<&str> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["device1", "twill_kernel4", "mesh4_10_100_0_12", "peer4_10_100_0_254"]);
        let mesh = &ps[2];
        assert!(mesh.established());
        assert_eq!(mesh.since, "2026-12-07 04:44:24");
        assert_eq!(mesh.description.as_deref(), Some("node node-2"));
        let b = mesh.bgp.as_ref().unwrap();
        assert_eq!(
            (b.neighbor, b.neighbor_as, b.local_as),
            (Some("10.100.0.12".parse().unwrap()), Some(64512), Some(64512))
        );
        assert_eq!((mesh.imported(), mesh.exported()), (3, 2));
        assert_eq!(mesh.channels[1].preferred, 2);
        let peer = &ps[3];
        assert!(!peer.established());
        assert_eq!(peer.since, "04:44:39.001");
        assert_eq!(peer.info, "Active Received: Administrative shutdown");
        assert_eq!(
            peer.bgp.as_ref().unwrap().last_error.as_deref(),
            Some("Received: Administrative shutdown")
        );
        assert_eq!(peer.channels[0].state, "DOWN");
        assert_eq!(ps[1].channels[0].imported, 1);
        assert!(!ps[1].is_bgp() && ps[1].bgp.is_none());
    }

    #[test]
    fn route_count_words() {
        assert_eq!(route_counts("1 imported, 1 exported, 1 preferred"), (1, 1, 1));
        assert_eq!(route_counts("4 imported, 2 filtered, 0 exported, 3 preferred"), (4, 0, 3));
        assert_eq!(route_counts("garbage"), (0, 0, 0));
    }
}
