//! The subset of BIRD 2's configuration language twill writes, as data, and its rendering.
//!
//! Planners ([`crate::bgp::plan`] for a node, the lab's router and outside host) build a
//! [`BirdConfig`]; [`BirdConfig::render`] turns it into text. Nothing here reads the kernel
//! or the datastore, so every configuration twill can produce is golden-tested and checked
//! with `bird -p` (`crates/agent/tests/bird_config.rs`).
//!
//! BIRD's strings have no escapes (`"` ends a string wherever it appears), so every string
//! rendered here goes through [`quote`], which replaces what cannot be written; passwords are
//! validated before they get here (see [`crate::bgppeer`]) so that nothing of them is lost.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// An address family, i.e. a BIRD channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    pub fn of_net(net: &IpNet) -> Family {
        Family::of(net.addr())
    }

    /// The channel keyword: `ipv4`, `ipv6`.
    pub fn channel(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }

    /// `4` or `6`, for protocol names.
    pub fn digit(self) -> char {
        match self {
            Family::V4 => '4',
            Family::V6 => '6',
        }
    }
}

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdConfig {
    /// Comment lines at the top of the file (without `#`).
    pub header: Vec<String>,
    pub router_id: Ipv4Addr,
    /// `graceful restart wait`: the longest a BIRD started with `-R` holds back kernel
    /// synchronisation waiting for its peers' End-of-RIB.
    pub graceful_restart_wait: Option<u32>,
    /// Interfaces whose connected networks go into BIRD's tables (`protocol direct`), so
    /// that next hops of multihop sessions resolve through them.
    pub direct: Vec<String>,
    pub kernel: Option<Kernel>,
    pub statics: Vec<Static>,
    pub filters: Vec<Filter>,
    /// Options every session shares, rendered as `template bgp twill_bgp`.
    pub template: Option<BgpTemplate>,
    pub sessions: Vec<BgpSession>,
}

/// `protocol kernel` per family: what BIRD puts into the kernel's main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub families: Vec<Family>,
    /// The route metric BIRD stamps on its routes; it also only ever considers routes with
    /// this metric its own, so it never touches anyone else's.
    pub metric: u32,
    /// The export filter (BIRD table → kernel).
    pub export: Export,
    /// Learn routes other software put into the kernel (the default route), so that
    /// multihop next hops resolve. They are never exported to BGP by twill's filters.
    pub learn: bool,
    /// Leave the routes in the kernel when BIRD shuts down.
    pub persist: bool,
    /// Defer kernel synchronisation during graceful restart recovery (`bird -R`).
    pub graceful_restart: bool,
    pub scan_seconds: u32,
}

/// `protocol static NAME { FAMILY; route NET blackhole; ... }`: routes to announce. They are
/// blackholes in BIRD's table only; the kernel export filters never take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Static {
    pub name: String,
    pub comment: Option<String>,
    pub family: Family,
    pub routes: Vec<IpNet>,
}

/// A named filter: its rules in order, then `reject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

/// One rule of a [`Filter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `if net ~ [ NETS ] then reject;` (exact prefixes).
    RejectNets(Vec<IpNet>),
    /// `if proto = "A" || proto = "B" then accept;`
    AcceptProtocols(Vec<String>),
    /// `if source = RTS_BGP then accept;`
    AcceptBgp,
}

/// What a channel takes or gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    All,
    None,
    Filter(String),
}

impl Export {
    fn render(&self) -> String {
        match self {
            Export::All => "all".into(),
            Export::None => "none".into(),
            Export::Filter(name) => format!("filter {name}"),
        }
    }
}

/// Options shared by every BGP session of one speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpTemplate {
    pub local_as: u32,
    pub hold_seconds: u32,
    /// Seconds from a protocol's start to its first connection attempt.
    pub connect_delay_seconds: u32,
    /// Seconds between connection attempts.
    pub connect_retry_seconds: u32,
    /// Minimum and maximum delay before a failed session is tried again.
    pub error_wait_seconds: (u32, u32),
    /// `graceful restart on` with this restart time; `aware` (helper only) when `None`.
    pub graceful_restart_seconds: Option<u32>,
}

/// Where a session's neighbour is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Neighbor {
    /// `neighbor IP as AS`.
    Addr { ip: IpAddr, asn: u32 },
    /// `neighbor range NET as AS`: dynamic BGP, one passive session per peer that connects
    /// from NET, named `DYNAMIC_NAME` + a number.
    Range { net: IpNet, asn: u32, dynamic_name: String },
}

/// Whether the neighbour is on a shared segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// `direct`: on a connected network; next hops used as they come.
    Direct,
    /// `multihop`: reached through routers; next hops resolved through BIRD's tables.
    Multihop,
}

/// One channel of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub family: Family,
    pub import: Export,
    pub export: Export,
}

/// `protocol bgp NAME from twill_bgp { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSession {
    pub name: String,
    /// What the session is for (`node node-2`, `BGPPeer tor`); BIRD shows it as
    /// `Description:` in `show protocols all`, which is how twill maps sessions back.
    pub description: String,
    /// The local address to use (`local IP`).
    pub local_ip: Option<IpAddr>,
    pub neighbor: Neighbor,
    pub hop: Hop,
    pub rr_client: bool,
    pub passive: bool,
    /// TCP MD5 signature key (RFC 2385).
    pub password: Option<String>,
    pub channels: Vec<Channel>,
}

/// The template every session is derived from.
pub const TEMPLATE: &str = "twill_bgp";

/// `"s"` as BIRD reads it: `"` and `\` (which BIRD cannot escape) and control characters
/// become `_`.
pub fn quote(s: &str) -> String {
    let clean: String =
        s.chars().map(|c| if c == '"' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    format!("\"{clean}\"")
}

/// True when `quote` keeps `s` as it is.
pub fn quotable(s: &str) -> bool {
    !s.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}

impl BirdConfig {
    /// The configuration file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "# {line}");
        }
        let _ = writeln!(out, "\nrouter id {};", self.router_id);
        // ISO timestamps in `show protocols`, parsed by twill's status readers.
        out.push_str("timeformat protocol iso long;\n");
        out.push_str("log stderr { info, remote, warning, error, auth, fatal, bug };\n");
        if let Some(wait) = self.graceful_restart_wait {
            let _ = writeln!(out, "graceful restart wait {wait};");
        }
        // Filters are symbols: defined before the protocols that name them.
        for f in &self.filters {
            f.render(&mut out);
        }
        out.push_str("\nprotocol device {\n  scan time 10;\n}\n");
        if !self.direct.is_empty() {
            self.render_direct(&mut out);
        }
        if let Some(k) = &self.kernel {
            k.render(&mut out);
        }
        for s in &self.statics {
            s.render(&mut out);
        }
        if let Some(t) = &self.template {
            t.render(&mut out);
        }
        for s in &self.sessions {
            s.render(&mut out);
        }
        out
    }

    fn render_direct(&self, out: &mut String) {
        let families: Vec<Family> =
            self.kernel.as_ref().map(|k| k.families.clone()).unwrap_or(vec![Family::V4]);
        out.push_str("\nprotocol direct {\n");
        for f in families {
            let _ = writeln!(out, "  {};", f.channel());
        }
        let names: Vec<String> = self.direct.iter().map(|i| quote(i)).collect();
        let _ = writeln!(out, "  interface {};\n}}", names.join(", "));
    }
}

impl Kernel {
    fn render(&self, out: &mut String) {
        for f in &self.families {
            let _ = writeln!(out, "\nprotocol kernel twill_kernel{} {{", f.digit());
            let _ = writeln!(
                out,
                "  {} {{\n    import all;\n    export {};\n  }};",
                f.channel(),
                self.export.render()
            );
            let _ = writeln!(out, "  metric {};", self.metric);
            for (on, word) in [
                (self.learn, "learn"),
                (self.persist, "persist"),
                (self.graceful_restart, "graceful restart"),
            ] {
                if on {
                    let _ = writeln!(out, "  {word};");
                }
            }
            let _ = writeln!(out, "  scan time {};\n}}", self.scan_seconds);
        }
    }
}

impl Static {
    fn render(&self, out: &mut String) {
        out.push('\n');
        if let Some(c) = &self.comment {
            let _ = writeln!(out, "# {c}");
        }
        let _ = writeln!(out, "protocol static {} {{\n  {};", self.name, self.family.channel());
        for r in &self.routes {
            let _ = writeln!(out, "  route {r} blackhole;");
        }
        out.push_str("}\n");
    }
}

impl Filter {
    fn render(&self, out: &mut String) {
        out.push('\n');
        if let Some(c) = &self.comment {
            let _ = writeln!(out, "# {c}");
        }
        let _ = writeln!(out, "filter {} {{", self.name);
        for r in &self.rules {
            let line = match r {
                Rule::RejectNets(nets) if nets.is_empty() => continue,
                Rule::RejectNets(nets) => {
                    let list: Vec<String> = nets.iter().map(IpNet::to_string).collect();
                    format!("if net ~ [ {} ] then reject;", list.join(", "))
                }
                Rule::AcceptProtocols(names) if names.is_empty() => continue,
                Rule::AcceptProtocols(names) => {
                    let tests: Vec<String> = names.iter().map(|n| format!("proto = {}", quote(n))).collect();
                    format!("if {} then accept;", tests.join(" || "))
                }
                Rule::AcceptBgp => "if source = RTS_BGP then accept;".into(),
            };
            let _ = writeln!(out, "  {line}");
        }
        out.push_str("  reject;\n}\n");
    }
}

impl BgpTemplate {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\ntemplate bgp {TEMPLATE} {{");
        let _ = writeln!(out, "  local as {};", self.local_as);
        let _ = writeln!(out, "  hold time {};", self.hold_seconds);
        let _ = writeln!(out, "  connect delay time {};", self.connect_delay_seconds);
        let _ = writeln!(out, "  connect retry time {};", self.connect_retry_seconds);
        let _ =
            writeln!(out, "  error wait time {}, {};", self.error_wait_seconds.0, self.error_wait_seconds.1);
        match self.graceful_restart_seconds {
            Some(t) => {
                let _ = writeln!(out, "  graceful restart on;\n  graceful restart time {t};");
            }
            None => out.push_str("  graceful restart aware;\n"),
        }
        out.push_str("}\n");
    }
}

impl BgpSession {
    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "\nprotocol bgp {} from {TEMPLATE} {{", self.name);
        let _ = writeln!(out, "  description {};", quote(&self.description));
        if let Some(ip) = self.local_ip {
            let _ = writeln!(out, "  local {ip};");
        }
        match &self.neighbor {
            Neighbor::Addr { ip, asn } => {
                let _ = writeln!(out, "  neighbor {ip} as {asn};");
            }
            Neighbor::Range { net, asn, dynamic_name } => {
                let _ = writeln!(
                    out,
                    "  neighbor range {net} as {asn};\n  dynamic name {};",
                    quote(dynamic_name)
                );
            }
        }
        out.push_str(match self.hop {
            Hop::Direct => "  direct;\n",
            Hop::Multihop => "  multihop;\n",
        });
        if self.rr_client {
            out.push_str("  rr client;\n");
        }
        if self.passive {
            out.push_str("  passive on;\n");
        }
        if let Some(p) = &self.password {
            let _ = writeln!(out, "  password {};", quote(p));
        }
        for c in &self.channels {
            let _ = writeln!(
                out,
                "  {} {{\n    import {};\n    export {};\n  }};",
                c.family.channel(),
                c.import.render(),
                c.export.render()
            );
        }
        out.push_str("}\n");
    }
}

/// A protocol name from an address: `PREFIX4_10_100_0_12`, `PREFIX6_fd00_100__12`. BIRD's
/// names are letters, digits and `_`; addresses are unique per session where node and peer
/// names (with `-` and `.`) would not map one-to-one.
pub fn session_name(prefix: &str, ip: IpAddr) -> String {
    let spelled: String =
        ip.to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{prefix}{}_{spelled}", Family::of(ip).digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_replaces_what_bird_cannot_read() {
        assert_eq!(quote("node node-2"), "\"node node-2\"");
        assert_eq!(quote("a\"b\\c\nd"), "\"a_b_c_d\"");
        assert!(quotable("s3cr3t!#$%"));
        assert!(!quotable("x\"y") && !quotable("x\\y") && !quotable("x\ty"));
    }

    #[test]
    fn session_names_are_bird_symbols() {
        assert_eq!(session_name("mesh", "10.100.0.12".parse().unwrap()), "mesh4_10_100_0_12");
        assert_eq!(session_name("peer", "fd00:100::12".parse().unwrap()), "peer6_fd00_100__12");
    }

    #[test]
    fn empty_rules_are_left_out() {
        let f = Filter {
            name: "f".into(),
            comment: None,
            rules: vec![Rule::RejectNets(vec![]), Rule::AcceptProtocols(vec![]), Rule::AcceptBgp],
        };
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(out, "\nfilter f {\n  if source = RTS_BGP then accept;\n  reject;\n}\n");
    }
}
