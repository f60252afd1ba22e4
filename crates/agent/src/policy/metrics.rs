//! The policy controller's metrics, registered into twilld's `/metrics` registry.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Written by the controller, read by the health server. Clones share the values.
#[derive(Debug, Clone)]
pub struct PolicyMetrics {
    policies: Gauge,
    isolated_pods: Gauge,
    rules: Gauge,
    elements: Gauge,
    synced_revision: Gauge,
    applies: Family<KindLabel, Counter>,
    apply_duration: Histogram,
    last_apply: Gauge<f64, AtomicU64>,
    repairs: Counter,
    errors: Counter,
}

/// What the table holds after a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// NetworkPolicies in the cluster.
    pub policies: usize,
    /// Local pods some policy isolates (in either direction).
    pub isolated_pods: usize,
    /// Rules in the table's chains.
    pub rules: usize,
    /// Set and map elements.
    pub elements: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

const APPLY_KINDS: [&str; 3] = ["replaced", "updated", "removed"];

fn n(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Default for PolicyMetrics {
    fn default() -> PolicyMetrics {
        let m = PolicyMetrics {
            policies: Gauge::default(),
            isolated_pods: Gauge::default(),
            rules: Gauge::default(),
            elements: Gauge::default(),
            synced_revision: Gauge::default(),
            applies: Family::default(),
            // 1 ms to about 4 s: an element update takes a millisecond, a large table seconds.
            apply_duration: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            last_apply: Gauge::default(),
            repairs: Counter::default(),
            errors: Counter::default(),
        };
        // Every kind is exposed from the start, at 0, so rate() sees the first change.
        for kind in APPLY_KINDS {
            let _ = m.applies.get_or_create(&KindLabel { kind });
        }
        m
    }
}

impl PolicyMetrics {
    /// Adds the metrics to `r` (they stay shared with `self`).
    pub fn register(&self, r: &mut Registry) {
        r.register("twill_policy_policies", "NetworkPolicies in the cluster", self.policies.clone());
        let isolated = self.isolated_pods.clone();
        r.register("twill_policy_isolated_pods", "Local pods isolated by some NetworkPolicy", isolated);
        r.register("twill_policy_rules", "Rules in this node's policy table", self.rules.clone());
        let elements = self.elements.clone();
        r.register("twill_policy_elements", "Set and map elements in this node's policy table", elements);
        r.register(
            "twill_policy_synced_revision",
            "Datastore revision of the cluster state the policy table matches",
            self.synced_revision.clone(),
        );
        let applies = self.applies.clone();
        r.register("twill_policy_applies", "Changes made to the policy table, by kind", applies);
        let duration = self.apply_duration.clone();
        r.register("twill_policy_apply_duration_seconds", "Time spent changing the policy table", duration);
        let last = self.last_apply.clone();
        r.register(
            "twill_policy_last_apply_seconds",
            "Duration of the last change to the policy table",
            last,
        );
        let repairs = self.repairs.clone();
        r.register("twill_policy_repairs", "Times the policy table had drifted and was put back", repairs);
        let errors = self.errors.clone();
        r.register("twill_policy_errors", "Policy passes that failed or held back a change", errors);
    }

    /// A successful pass that left the table as the cluster wants it at `revision`.
    pub fn synced(&self, stats: TableStats, revision: u64) {
        self.policies.set(n(stats.policies));
        self.isolated_pods.set(n(stats.isolated_pods));
        self.rules.set(n(stats.rules));
        self.elements.set(n(stats.elements));
        // Passes may report out of order (an older listing finishing later): never go back.
        let revision = i64::try_from(revision).unwrap_or(i64::MAX);
        self.synced_revision.inner().fetch_max(revision, std::sync::atomic::Ordering::Relaxed);
    }

    /// One kernel change (`replaced`, `updated`, `removed`) and how long it took.
    pub fn applied(&self, verb: &'static str, took: Duration, repair: bool) {
        if APPLY_KINDS.contains(&verb) {
            self.applies.get_or_create(&KindLabel { kind: verb }).inc();
        }
        self.apply_duration.observe(took.as_secs_f64());
        self.last_apply.set(took.as_secs_f64());
        if repair {
            self.repairs.inc();
        }
    }

    pub fn error(&self) {
        self.errors.inc();
    }

    pub fn errors(&self) -> u64 {
        self.errors.get()
    }

    pub fn synced_revision(&self) -> u64 {
        u64::try_from(self.synced_revision.get()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_sample() {
        let m = PolicyMetrics::default();
        m.synced(TableStats { policies: 3, isolated_pods: 2, rules: 20, elements: 9 }, 41);
        m.synced(TableStats { policies: 3, isolated_pods: 2, rules: 20, elements: 9 }, 40);
        m.applied("replaced", Duration::from_millis(12), false);
        m.applied("updated", Duration::from_millis(4), true);
        m.error();
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "twill_policy_policies 3",
            "twill_policy_isolated_pods 2",
            "twill_policy_rules 20",
            "twill_policy_elements 9",
            "twill_policy_synced_revision 41",
            "# TYPE twill_policy_applies counter",
            "twill_policy_applies_total{kind=\"replaced\"} 1",
            "twill_policy_applies_total{kind=\"updated\"} 1",
            "twill_policy_applies_total{kind=\"removed\"} 0",
            "# TYPE twill_policy_apply_duration_seconds histogram",
            "twill_policy_apply_duration_seconds_sum 0.016",
            "twill_policy_apply_duration_seconds_count 2",
            "twill_policy_apply_duration_seconds_bucket{le=\"0.004\"} 1",
            "twill_policy_apply_duration_seconds_bucket{le=\"+Inf\"} 2",
            "twill_policy_last_apply_seconds 0.004",
            "twill_policy_repairs_total 1",
            "twill_policy_errors_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert_eq!((m.synced_revision(), m.errors()), (41, 1));
    }
}
