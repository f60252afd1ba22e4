//! What the BGP backend reports: BIRD's process, its sessions (from `show protocols all`)
//! and the routes it put into the kernel. Served as JSON on `/bgp` and as Prometheus
//! samples on `/metrics`; `twill lab status` prints it.

use std::fmt::Write;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::bird::ProtocolStatus;

/// One BGP session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// BIRD's protocol name (`mesh4_10_100_0_12`).
    pub name: String,
    /// Who the neighbour is (`node node-2`, `route reflector node-1`, `BGPPeer tor`).
    pub peer: String,
    pub neighbor: Option<IpAddr>,
    pub neighbor_as: Option<u32>,
    /// BIRD's summary: `Established`, `Active`, `Connect`, ... and the last error.
    pub state: String,
    pub established: bool,
    pub since: String,
    /// Routes received from the neighbour (in BIRD's table).
    pub routes_learned: u64,
    /// Routes announced to the neighbour.
    pub routes_announced: u64,
}

impl Session {
    pub fn from_protocol(p: &ProtocolStatus) -> Session {
        let bgp = p.bgp.clone().unwrap_or_default();
        Session {
            name: p.name.clone(),
            peer: p.description.clone().unwrap_or_default(),
            neighbor: bgp.neighbor,
            neighbor_as: bgp.neighbor_as,
            state: p.info.clone(),
            established: p.established(),
            since: p.since.clone(),
            routes_learned: p.imported(),
            routes_announced: p.exported(),
        }
    }
}

/// The BGP state of one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpStatus {
    pub router_id: String,
    pub local_as: u32,
    pub route_reflector: bool,
    /// BIRD's pid while it runs.
    pub bird_pid: Option<i32>,
    /// Times BIRD was started again after it died.
    pub bird_restarts: u64,
    /// Successful `configure` commands.
    pub reconfigurations: u64,
    /// Configurations BIRD refused or that could not be applied.
    pub reconfiguration_errors: u64,
    /// Routes with twill's BGP mark in the kernel's main table.
    pub kernel_routes: usize,
    pub sessions: Vec<Session>,
    /// Why the sessions could not be read, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BgpStatus {
    pub fn sessions_up(&self) -> usize {
        self.sessions.iter().filter(|s| s.established).count()
    }

    /// `2/3 up` — the summary `twill lab status` shows per node.
    pub fn summary(&self) -> String {
        format!("{}/{} up", self.sessions_up(), self.sessions.len())
    }

    /// Appends the Prometheus samples.
    pub fn render_metrics(&self, out: &mut String) {
        let learned = self.sessions.iter().map(|s| s.routes_learned).sum();
        let announced = self.sessions.iter().map(|s| s.routes_announced).sum();
        let gauges: [(&str, &str, u64); 6] = [
            ("twill_bird_up", "1 while BIRD runs.", u64::from(self.bird_pid.is_some())),
            ("twill_bgp_sessions", "BGP sessions configured.", count(self.sessions.len())),
            ("twill_bgp_sessions_up", "BGP sessions established.", count(self.sessions_up())),
            ("twill_bgp_routes_learned", "Routes learned from all BGP neighbours.", learned),
            ("twill_bgp_routes_announced", "Routes announced to all BGP neighbours.", announced),
            (
                "twill_bgp_kernel_routes",
                "Routes BIRD put into the kernel (proto bird, twill's metric).",
                count(self.kernel_routes),
            ),
        ];
        for (name, help, v) in gauges {
            sample(out, name, "gauge", help, v);
        }
        let counters = [
            ("twill_bird_restarts_total", "Times BIRD died and was started again.", self.bird_restarts),
            (
                "twill_bird_reconfigurations_total",
                "Configurations applied with `configure`.",
                self.reconfigurations,
            ),
            (
                "twill_bird_reconfiguration_errors_total",
                "Configurations BIRD refused or that could not be applied.",
                self.reconfiguration_errors,
            ),
        ];
        for (name, help, v) in counters {
            sample(out, name, "counter", help, v);
        }
        self.render_sessions(out);
    }

    /// One sample per session of each per-session gauge.
    fn render_sessions(&self, out: &mut String) {
        let per_session: [(&str, &str, SessionValue); 3] = [
            ("twill_bgp_session_up", "1 while the BGP session is established.", |s| u64::from(s.established)),
            ("twill_bgp_session_routes_learned", "Routes learned from this neighbour.", |s| s.routes_learned),
            ("twill_bgp_session_routes_announced", "Routes announced to this neighbour.", |s| {
                s.routes_announced
            }),
        ];
        for (name, help, value) in per_session {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for s in &self.sessions {
                let neighbor = s.neighbor.map(|n| n.to_string()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{name}{{session=\"{}\",peer=\"{}\",neighbor=\"{neighbor}\"}} {}",
                    label(&s.name),
                    label(&s.peer),
                    value(s)
                );
            }
        }
    }
}

/// `# HELP`, `# TYPE` and the one sample of a metric without labels.
fn sample(out: &mut String, name: &str, kind: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
}

/// One per-session sample's value.
type SessionValue = fn(&Session) -> u64;

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> BgpStatus {
        BgpStatus {
            router_id: "10.100.0.11".into(),
            local_as: 64512,
            bird_pid: Some(42),
            bird_restarts: 1,
            reconfigurations: 3,
            kernel_routes: 2,
            sessions: vec![
                Session {
                    name: "mesh4_10_100_0_12".into(),
                    peer: "node node-2".into(),
                    neighbor: Some("10.100.0.12".parse().unwrap()),
                    state: "Established".into(),
                    established: true,
                    routes_learned: 2,
                    routes_announced: 1,
                    ..Session::default()
                },
                Session {
                    name: "peer4_10_100_0_254".into(),
                    peer: "BGPPeer \"x\"".into(),
                    state: "Active".into(),
                    ..Session::default()
                },
            ],
            ..BgpStatus::default()
        }
    }

    #[test]
    fn metrics_count_sessions_and_routes() {
        let mut out = String::new();
        status().render_metrics(&mut out);
        for line in [
            "twill_bird_up 1",
            "twill_bgp_sessions 2",
            "twill_bgp_sessions_up 1",
            "twill_bgp_routes_learned 2",
            "twill_bgp_routes_announced 1",
            "twill_bgp_kernel_routes 2",
            "twill_bird_restarts_total 1",
            "twill_bird_reconfigurations_total 3",
            "twill_bgp_session_up{session=\"mesh4_10_100_0_12\",peer=\"node node-2\",neighbor=\"10.100.0.12\"} 1",
            "twill_bgp_session_up{session=\"peer4_10_100_0_254\",peer=\"BGPPeer \\\"x\\\"\",neighbor=\"\"} 0",
            "twill_bgp_session_routes_learned{session=\"mesh4_10_100_0_12\",peer=\"node node-2\",neighbor=\"10.100.0.12\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in:\n{out}");
        }
        assert_eq!(status().summary(), "1/2 up");
    }
}
