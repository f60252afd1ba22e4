//! The bgp backend's metrics, registered into twilld's `/metrics` registry when the node
//! runs the bgp backend, and set from each pass's [`BgpStatus`].

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::status::BgpStatus;

/// Written by the reconciler, read by the health server. Clones share the values.
#[derive(Debug, Default)]
pub struct BgpMetrics {
    bird_up: Gauge,
    sessions: Gauge,
    sessions_up: Gauge,
    routes_learned: Gauge,
    routes_announced: Gauge,
    kernel_routes: Gauge,
    session_up: Family<SessionLabels, Gauge>,
    session_learned: Family<SessionLabels, Gauge>,
    session_announced: Family<SessionLabels, Gauge>,
    restarts: Counter,
    reconfigurations: Counter,
    reconfiguration_errors: Counter,
    /// The counters' values as last seen in a status, so that only increases are added.
    seen: Mutex<[u64; 3]>,
}

/// Which session a per-session sample is about.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    session: String,
    peer: String,
    neighbor: String,
}

fn n<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

impl BgpMetrics {
    /// Adds the metrics to `r` (they stay shared with `self`).
    pub fn register(&self, r: &mut Registry) {
        let gauges = [
            ("twill_bird_up", "1 while BIRD runs", &self.bird_up),
            ("twill_bgp_sessions", "BGP sessions configured", &self.sessions),
            ("twill_bgp_sessions_up", "BGP sessions established", &self.sessions_up),
            ("twill_bgp_routes_learned", "Routes learned from all BGP neighbours", &self.routes_learned),
            ("twill_bgp_routes_announced", "Routes announced to all BGP neighbours", &self.routes_announced),
            (
                "twill_bgp_kernel_routes",
                "Routes BIRD put into the kernel (proto bird, twill's metric)",
                &self.kernel_routes,
            ),
        ];
        for (name, help, g) in gauges {
            r.register(name, help, g.clone());
        }
        let families = [
            ("twill_bgp_session_up", "1 while the BGP session is established", &self.session_up),
            ("twill_bgp_session_routes_learned", "Routes learned from this neighbour", &self.session_learned),
            (
                "twill_bgp_session_routes_announced",
                "Routes announced to this neighbour",
                &self.session_announced,
            ),
        ];
        for (name, help, f) in families {
            r.register(name, help, f.clone());
        }
        let counters = [
            ("twill_bird_restarts", "Times BIRD died and was started again", &self.restarts),
            (
                "twill_bird_reconfigurations",
                "Configurations applied with `configure`",
                &self.reconfigurations,
            ),
            (
                "twill_bird_reconfiguration_errors",
                "Configurations BIRD refused or that could not be applied",
                &self.reconfiguration_errors,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
    }

    /// Sets every sample from `s`.
    pub fn update(&self, s: &BgpStatus) {
        self.bird_up.set(i64::from(s.bird_pid.is_some()));
        self.sessions.set(n(s.sessions.len()));
        self.sessions_up.set(n(s.sessions_up()));
        self.routes_learned.set(n(s.sessions.iter().map(|x| x.routes_learned).sum::<u64>()));
        self.routes_announced.set(n(s.sessions.iter().map(|x| x.routes_announced).sum::<u64>()));
        self.kernel_routes.set(n(s.kernel_routes));
        for f in [&self.session_up, &self.session_learned, &self.session_announced] {
            f.clear();
        }
        for x in &s.sessions {
            let neighbor = x.neighbor.map(|a| a.to_string()).unwrap_or_default();
            let labels = SessionLabels { session: x.name.clone(), peer: x.peer.clone(), neighbor };
            self.session_up.get_or_create(&labels).set(i64::from(x.established));
            self.session_learned.get_or_create(&labels).set(n(x.routes_learned));
            self.session_announced.get_or_create(&labels).set(n(x.routes_announced));
        }
        let now = [s.bird_restarts, s.reconfigurations, s.reconfiguration_errors];
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for ((c, new), old) in [&self.restarts, &self.reconfigurations, &self.reconfiguration_errors]
            .iter()
            .zip(now)
            .zip(seen.iter_mut())
        {
            c.inc_by(new.saturating_sub(*old));
            *old = new.max(*old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::status::Session;

    fn status(restarts: u64) -> BgpStatus {
        BgpStatus {
            bird_pid: Some(42),
            bird_restarts: restarts,
            reconfigurations: 3,
            kernel_routes: 2,
            sessions: vec![
                Session {
                    name: "mesh4_10_100_0_12".into(),
                    peer: "node node-2".into(),
                    neighbor: Some("10.100.0.12".parse().unwrap()),
                    established: true,
                    routes_learned: 2,
                    routes_announced: 1,
                    ..Session::default()
                },
                Session {
                    name: "peer4_10_100_0_254".into(),
                    peer: "BGPPeer outside".into(),
                    ..Session::default()
                },
            ],
            ..BgpStatus::default()
        }
    }

    #[test]
    fn samples_follow_the_status() {
        let m = BgpMetrics::default();
        let mut r = Registry::default();
        m.register(&mut r);
        m.update(&status(1));
        m.update(&status(2));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "twill_bird_up 1",
            "twill_bgp_sessions 2",
            "twill_bgp_sessions_up 1",
            "twill_bgp_routes_learned 2",
            "twill_bgp_routes_announced 1",
            "twill_bgp_kernel_routes 2",
            "twill_bird_restarts_total 2",
            "twill_bird_reconfigurations_total 3",
            "twill_bird_reconfiguration_errors_total 0",
            "twill_bgp_session_up{session=\"mesh4_10_100_0_12\",peer=\"node node-2\",neighbor=\"10.100.0.12\"} 1",
            "twill_bgp_session_up{session=\"peer4_10_100_0_254\",peer=\"BGPPeer outside\",neighbor=\"\"} 0",
            "twill_bgp_session_routes_learned{session=\"mesh4_10_100_0_12\",peer=\"node node-2\",neighbor=\"10.100.0.12\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }
}
