//! What the BGP backend reports: BIRD's process, its sessions (from `show protocols all`)
//! and the routes it put into the kernel. Served as JSON on `/bgp` and as samples on
//! `/metrics` ([`super::metrics`]); `twill lab status` prints it.

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_established_sessions() {
        let up = Session { established: true, ..Session::default() };
        let s = BgpStatus { sessions: vec![up, Session::default()], ..BgpStatus::default() };
        assert_eq!((s.sessions_up(), s.summary()), (1, "1/2 up".to_string()));
    }
}
