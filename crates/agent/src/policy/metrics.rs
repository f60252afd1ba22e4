//! The policy controller's metrics, part of twilld's `/metrics` (Prometheus text 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Written by the controller, read by the health server.
#[derive(Debug, Default)]
pub struct PolicyMetrics {
    policies: AtomicU64,
    isolated_pods: AtomicU64,
    rules: AtomicU64,
    elements: AtomicU64,
    synced_revision: AtomicU64,
    /// Replacements, element updates, removals.
    applies: [AtomicU64; 3],
    apply_micros_sum: AtomicU64,
    apply_count: AtomicU64,
    last_apply_micros: AtomicU64,
    repairs: AtomicU64,
    errors: AtomicU64,
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

const APPLY_KINDS: [&str; 3] = ["replaced", "updated", "removed"];

fn n(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl PolicyMetrics {
    /// A successful pass that left the table as the cluster wants it at `revision`.
    pub fn synced(&self, stats: TableStats, revision: u64) {
        self.policies.store(n(stats.policies), Ordering::Relaxed);
        self.isolated_pods.store(n(stats.isolated_pods), Ordering::Relaxed);
        self.rules.store(n(stats.rules), Ordering::Relaxed);
        self.elements.store(n(stats.elements), Ordering::Relaxed);
        self.synced_revision.fetch_max(revision, Ordering::Relaxed);
    }

    /// One kernel change (`replaced`, `updated`, `removed`) and how long it took.
    pub fn applied(&self, verb: &str, took: Duration, repair: bool) {
        if let Some(i) = APPLY_KINDS.iter().position(|k| *k == verb) {
            self.applies[i].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.apply_micros_sum.fetch_add(micros, Ordering::Relaxed);
        self.apply_count.fetch_add(1, Ordering::Relaxed);
        self.last_apply_micros.store(micros, Ordering::Relaxed);
        if repair {
            self.repairs.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn synced_revision(&self) -> u64 {
        self.synced_revision.load(Ordering::Relaxed)
    }

    /// Appends the samples to a Prometheus exposition.
    pub fn render(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let gauges = [
            ("twill_policy_policies", "NetworkPolicies in the cluster.", &self.policies),
            ("twill_policy_isolated_pods", "Local pods isolated by some NetworkPolicy.", &self.isolated_pods),
            ("twill_policy_rules", "Rules in this node's policy table.", &self.rules),
            ("twill_policy_elements", "Set and map elements in this node's policy table.", &self.elements),
            (
                "twill_policy_synced_revision",
                "Datastore revision of the cluster state the policy table matches.",
                &self.synced_revision,
            ),
        ];
        for (name, help, v) in gauges {
            header(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {}", get(v));
        }
        header(out, "twill_policy_applies_total", "counter", "Changes made to the policy table, by kind.");
        for (kind, v) in APPLY_KINDS.iter().zip(&self.applies) {
            let _ = writeln!(out, "twill_policy_applies_total{{kind=\"{kind}\"}} {}", get(v));
        }
        let secs = |micros: u64| micros as f64 / 1e6;
        header(
            out,
            "twill_policy_apply_duration_seconds",
            "summary",
            "Time spent changing the policy table.",
        );
        let _ =
            writeln!(out, "twill_policy_apply_duration_seconds_sum {}", secs(get(&self.apply_micros_sum)));
        let _ = writeln!(out, "twill_policy_apply_duration_seconds_count {}", get(&self.apply_count));
        header(
            out,
            "twill_policy_last_apply_seconds",
            "gauge",
            "Duration of the last change to the policy table.",
        );
        let _ = writeln!(out, "twill_policy_last_apply_seconds {}", secs(get(&self.last_apply_micros)));
        let counters = [
            (
                "twill_policy_repairs_total",
                "Times the policy table had drifted and was put back.",
                &self.repairs,
            ),
            ("twill_policy_errors_total", "Policy passes that failed or held back a change.", &self.errors),
        ];
        for (name, help, v) in counters {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", get(v));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
        m.applied("updated", Duration::from_millis(3), true);
        m.error();
        let mut text = String::new();
        m.render(&mut text);
        for line in [
            "twill_policy_policies 3",
            "twill_policy_isolated_pods 2",
            "twill_policy_rules 20",
            "twill_policy_elements 9",
            "twill_policy_synced_revision 41",
            "twill_policy_applies_total{kind=\"replaced\"} 1",
            "twill_policy_applies_total{kind=\"updated\"} 1",
            "twill_policy_applies_total{kind=\"removed\"} 0",
            "# TYPE twill_policy_apply_duration_seconds summary",
            "twill_policy_apply_duration_seconds_sum 0.015",
            "twill_policy_apply_duration_seconds_count 2",
            "twill_policy_last_apply_seconds 0.003",
            "twill_policy_repairs_total 1",
            "twill_policy_errors_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }
}
