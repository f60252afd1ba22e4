//! The agent's counters and gauges, rendered in the Prometheus text format (0.0.4).
//!
//! CNI operations are not counted here: the plugins are short-lived processes the runtime
//! executes, and counting them would need a shared file or socket on every ADD/DEL; the
//! runtime's own metrics (kubelet's, containerd's) already count them.

use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ipnet::IpNet;

use crate::bgp::status::BgpStatus;
use crate::policy::metrics::PolicyMetrics;

/// Shared between the reconciler (writes) and the health server (reads).
#[derive(Debug, Default)]
pub struct Metrics {
    ready: AtomicBool,
    peers: AtomicU64,
    reconcile_total: AtomicU64,
    reconcile_errors_total: AtomicU64,
    datastore_errors_total: AtomicU64,
    repairs_total: AtomicU64,
    lease_renewals_total: AtomicU64,
    lease: Mutex<Option<(String, Vec<IpNet>)>>,
    /// The BGP backend's sessions and routes.
    bgp: Mutex<Option<BgpStatus>>,
    /// The NetworkPolicy controller's own metrics.
    pub policy: PolicyMetrics,
}

/// The counters that only ever go up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Reconcile,
    ReconcileError,
    DatastoreError,
    /// Kernel entries added or removed because they were missing or stale.
    Repair,
    LeaseRenewal,
}

impl Metrics {
    fn counter(&self, c: Counter) -> &AtomicU64 {
        match c {
            Counter::Reconcile => &self.reconcile_total,
            Counter::ReconcileError => &self.reconcile_errors_total,
            Counter::DatastoreError => &self.datastore_errors_total,
            Counter::Repair => &self.repairs_total,
            Counter::LeaseRenewal => &self.lease_renewals_total,
        }
    }

    pub fn add(&self, c: Counter, n: u64) {
        self.counter(c).fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counter(c).load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_peers(&self, n: usize) {
        self.peers.store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The node's leased subnets; `None` once it left.
    pub fn set_lease(&self, lease: Option<(String, Vec<IpNet>)>) {
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = lease;
    }

    /// The BGP backend's state (`None` with other backends).
    pub fn set_bgp(&self, status: Option<BgpStatus>) {
        *self.bgp.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    pub fn bgp(&self) -> Option<BgpStatus> {
        self.bgp.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The Prometheus exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let lease = self.lease.lock().unwrap_or_else(|p| p.into_inner()).clone();
        header(&mut out, "twill_lease_info", "gauge", "The pod subnets this node holds (value always 1).");
        for (node, nets) in lease.iter().flat_map(|(n, nets)| nets.iter().map(move |s| (n, s))) {
            let family = if nets.addr().is_ipv4() { "ipv4" } else { "ipv6" };
            let _ =
                writeln!(out, "twill_lease_info{{node=\"{node}\",subnet=\"{nets}\",family=\"{family}\"}} 1");
        }
        gauge(
            &mut out,
            "twill_ready",
            "1 once the subnet is leased and the CNI config written.",
            u64::from(self.is_ready()),
        );
        gauge(
            &mut out,
            "twill_peers",
            "Other nodes this node currently routes to.",
            self.peers.load(Ordering::Relaxed),
        );
        let counters = [
            ("twill_reconcile_total", "Reconcile passes run.", Counter::Reconcile),
            ("twill_reconcile_errors_total", "Reconcile passes that hit an error.", Counter::ReconcileError),
            ("twill_datastore_errors_total", "Failed datastore operations.", Counter::DatastoreError),
            ("twill_repairs_total", "Kernel entries added or removed to match the cluster.", Counter::Repair),
            ("twill_lease_renewals_total", "Successful lease renewals.", Counter::LeaseRenewal),
        ];
        for (name, help, c) in counters {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", self.get(c));
        }
        self.policy.render(&mut out);
        if let Some(bgp) = self.bgp() {
            bgp.render_metrics(&mut out);
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.set_lease(Some((
            "node-1".into(),
            vec!["10.244.1.0/24".parse().unwrap(), "fd00:10:244:1::/64".parse().unwrap()],
        )));
        m.set_peers(2);
        m.set_ready(true);
        m.add(Counter::Reconcile, 3);
        m.add(Counter::DatastoreError, 1);
        let text = m.render();
        for line in [
            "# TYPE twill_lease_info gauge",
            "twill_lease_info{node=\"node-1\",subnet=\"10.244.1.0/24\",family=\"ipv4\"} 1",
            "twill_lease_info{node=\"node-1\",subnet=\"fd00:10:244:1::/64\",family=\"ipv6\"} 1",
            "twill_ready 1",
            "twill_peers 2",
            "# TYPE twill_reconcile_total counter",
            "twill_reconcile_total 3",
            "twill_reconcile_errors_total 0",
            "twill_datastore_errors_total 1",
            "twill_repairs_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        // Every sample line is NAME[{labels}] VALUE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            v.parse::<u64>().unwrap_or_else(|_| panic!("bad sample {l:?}"));
        }
    }

    #[test]
    fn no_lease_no_info_sample() {
        let text = Metrics::default().render();
        assert!(!text.lines().any(|l| l.starts_with("twill_lease_info{")));
        assert!(text.contains("twill_ready 0\n"));
    }
}
