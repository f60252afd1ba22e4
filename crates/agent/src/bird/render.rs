//! [`BirdConfig`] as BIRD's configuration language. Filters come before the protocols that
//! name them (they are symbols); sessions derive from one template.
//!
//! BIRD's strings have no escapes (`"` ends a string wherever it appears), so every string
//! rendered here goes through [`quote`], which replaces what cannot be written; passwords are
//! validated before they get here (see [`crate::bgppeer`]) so that nothing of them is lost.

use std::fmt::Write;

use ipnet::IpNet;

use super::config::{
    BgpSession, BgpTemplate, BirdConfig, Export, Family, Filter, Hop, Kernel, Neighbor, Rule, Static,
};

impl Export {
    fn render(&self) -> String {
        match self {
            Export::All => "all".into(),
            Export::None => "none".into(),
            Export::Filter(name) => format!("filter {name}"),
        }
    }
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
