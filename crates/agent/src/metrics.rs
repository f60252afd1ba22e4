//! The agent's counters and gauges, kept in a `prometheus-client` registry and exposed in the
//! OpenMetrics text format (which Prometheus scrapes as such; sample names are those of the
//! 0.0.4 text format twilld served before: counters end in `_total`).
//!
//! CNI operations are not counted here: the plugins are short-lived processes the runtime
//! executes, and counting them would need a shared file or socket on every ADD/DEL; the
//! runtime's own metrics (kubelet's, containerd's) already count them.

use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use std::sync::{Arc, Mutex};

use crate::bgp::metrics::BgpMetrics;
use crate::bgp::status::BgpStatus;
use crate::flows::FlowStore;
use crate::policy::metrics::PolicyMetrics;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Shared between the reconciler (writes) and the health server (reads).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ready: Gauge,
    peers: Gauge,
    held: Gauge,
    counters: [counter::Counter; 5],
    lease: Family<LeaseLabels, Gauge>,
    /// The NetworkPolicy controller's own metrics.
    pub policy: PolicyMetrics,
    /// The bgp backend's metrics, registered with that backend only.
    bgp_metrics: Option<BgpMetrics>,
    /// The bgp backend's last status, for `/bgp`.
    bgp: Mutex<Option<BgpStatus>>,
    /// Recent flow records (`/flows`) and their counters.
    pub flows: Arc<FlowStore>,
}

/// The labels of `twill_lease_info`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseLabels {
    node: String,
    subnet: String,
    family: &'static str,
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

/// Each counter's name (without `_total`, which the encoder appends) and help, in the order
/// of [`Counter`].
const COUNTERS: [(&str, &str); 5] = [
    ("twill_reconcile", "Reconcile passes run"),
    ("twill_reconcile_errors", "Reconcile passes that hit an error"),
    ("twill_datastore_errors", "Failed datastore operations"),
    ("twill_repairs", "Kernel entries added or removed to match the cluster"),
    ("twill_lease_renewals", "Successful lease renewals"),
];

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(false)
    }
}

impl Metrics {
    /// The registry, with the bgp backend's metrics when `bgp`.
    pub fn new(bgp: bool) -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            ready: Gauge::default(),
            peers: Gauge::default(),
            held: Gauge::default(),
            counters: Default::default(),
            lease: Family::default(),
            policy: PolicyMetrics::default(),
            bgp_metrics: bgp.then(BgpMetrics::default),
            bgp: Mutex::new(None),
            flows: Arc::new(FlowStore::default()),
        };
        let r = &mut m.registry;
        r.register("twill_lease_info", "The pod subnets this node holds (value always 1)", m.lease.clone());
        r.register("twill_ready", "1 once the subnet is leased and the CNI config written", m.ready.clone());
        r.register("twill_peers", "Other nodes this node currently routes to", m.peers.clone());
        r.register(
            "twill_peers_held",
            "Peers still routed to although their record vanished, until the datastore has been healthy for a TTL",
            m.held.clone(),
        );
        for ((name, help), c) in COUNTERS.iter().zip(&m.counters) {
            r.register(*name, *help, c.clone());
        }
        m.policy.register(r);
        m.flows.register(r);
        if let Some(b) = &m.bgp_metrics {
            b.register(&mut m.registry);
        }
        m
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics {
    fn counter(&self, c: Counter) -> &counter::Counter {
        let i = match c {
            Counter::Reconcile => 0,
            Counter::ReconcileError => 1,
            Counter::DatastoreError => 2,
            Counter::Repair => 3,
            Counter::LeaseRenewal => 4,
        };
        &self.counters[i]
    }

    pub fn add(&self, c: Counter, n: u64) {
        self.counter(c).inc_by(n);
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.counter(c).get()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.get() == 1
    }

    /// `n` peers routed to, `held` of them without a record (crate::absence).
    pub fn set_peers(&self, n: usize, held: usize) {
        self.peers.set(gauge_value(n));
        self.held.set(gauge_value(held));
    }

    /// The node's leased subnets; `None` once it left.
    pub fn set_lease(&self, lease: Option<(String, Vec<IpNet>)>) {
        self.lease.clear();
        for (node, subnet) in lease.iter().flat_map(|(n, nets)| nets.iter().map(move |s| (n, s))) {
            let family = if subnet.addr().is_ipv4() { "ipv4" } else { "ipv6" };
            let labels = LeaseLabels { node: node.clone(), subnet: subnet.to_string(), family };
            self.lease.get_or_create(&labels).set(1);
        }
    }

    /// The bgp backend's state after a pass (`None` with other backends).
    pub fn set_bgp(&self, status: Option<BgpStatus>) {
        if let (Some(m), Some(s)) = (&self.bgp_metrics, &status) {
            m.update(s);
        }
        *self.bgp.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// The bgp backend's last status.
    pub fn bgp(&self) -> Option<BgpStatus> {
        self.bgp.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The OpenMetrics exposition, `# EOF` included.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would leave a partial answer,
        // which the scraper rejects for its missing `# EOF`.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_documented_samples() {
        let m = Metrics::default();
        m.set_lease(Some((
            "node-1".into(),
            vec!["10.244.1.0/24".parse().unwrap(), "fd00:10:244:1::/64".parse().unwrap()],
        )));
        m.set_peers(2, 1);
        m.set_ready(true);
        m.add(Counter::Reconcile, 3);
        m.add(Counter::DatastoreError, 1);
        let text = m.render();
        for line in [
            "# TYPE twill_lease_info gauge",
            "twill_lease_info{node=\"node-1\",subnet=\"10.244.1.0/24\",family=\"ipv4\"} 1",
            "twill_lease_info{node=\"node-1\",subnet=\"fd00:10:244:1::/64\",family=\"ipv6\"} 1",
            "# TYPE twill_ready gauge",
            "twill_ready 1",
            "twill_peers 2",
            "twill_peers_held 1",
            "# TYPE twill_reconcile counter",
            "twill_reconcile_total 3",
            "twill_reconcile_errors_total 0",
            "twill_datastore_errors_total 1",
            "twill_repairs_total 0",
            "twill_lease_renewals_total 0",
            "twill_policy_synced_revision 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        // Every sample line is NAME[{labels}] VALUE.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            v.parse::<f64>().unwrap_or_else(|_| panic!("bad sample {l:?}"));
        }
        assert!(m.is_ready());
        assert_eq!(m.get(Counter::Reconcile), 3);
    }

    #[test]
    fn a_new_lease_replaces_the_old_samples() {
        let m = Metrics::default();
        m.set_lease(Some(("node-1".into(), vec!["10.244.1.0/24".parse().unwrap()])));
        m.set_lease(Some(("node-1".into(), vec!["10.244.2.0/24".parse().unwrap()])));
        let text = m.render();
        assert!(text.contains("subnet=\"10.244.2.0/24\""), "{text}");
        assert!(!text.contains("subnet=\"10.244.1.0/24\""), "{text}");
        m.set_lease(None);
        let text = m.render();
        assert!(!text.lines().any(|l| l.starts_with("twill_lease_info{")), "{text}");
        assert!(text.contains("twill_ready 0\n"));
    }
}
