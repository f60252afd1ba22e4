//! The recent flow records (a bounded ring, what `/flows` answers from) and the per-policy
//! counters of `/metrics`. Written by the reader thread, read by the HTTP server.

use std::collections::VecDeque;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::record::FlowRecord;

/// Records kept for `/flows`: about 4 MB of memory.
pub const RING: usize = 10_000;
/// The most records one `/flows` answer carries.
pub const MAX_ANSWER: usize = 5_000;

/// Which records a `/flows` request wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowQuery {
    /// Only records with a higher sequence number (`--follow` polls with the last one seen).
    pub after: Option<u64>,
    pub denied: bool,
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub limit: Option<usize>,
}

impl FlowQuery {
    /// From a URL query string: `after=12&denied=true&namespace=x&pod=x/a&limit=100`.
    pub fn parse(query: &str) -> Result<FlowQuery, String> {
        let mut q = FlowQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            let number = |v: &str| v.parse().map_err(|_| format!("{k}={v}: not a number"));
            match k {
                "after" => q.after = Some(number(&v)?),
                "limit" => q.limit = Some(number(&v)? as usize),
                "denied" => q.denied = matches!(v.as_str(), "" | "1" | "true"),
                "namespace" => q.namespace = Some(v),
                "pod" => q.pod = Some(v),
                _ => return Err(format!("unknown parameter {k:?} (after, denied, namespace, pod, limit)")),
            }
        }
        Ok(q)
    }

    pub fn matches(&self, r: &FlowRecord) -> bool {
        self.after.is_none_or(|a| r.seq > a)
            && (!self.denied || r.denied())
            && self.namespace.as_deref().is_none_or(|ns| r.in_namespace(ns))
            && self.pod.as_deref().is_none_or(|p| r.involves(p))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    verdict: String,
    direction: String,
    tier: String,
    policy: String,
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProblemLabel {
    problem: &'static str,
}

/// The ring and the counters.
#[derive(Debug, Default)]
pub struct FlowStore {
    ring: Mutex<Ring>,
    flows: Family<FlowLabels, Counter>,
    problems: Family<ProblemLabel, Counter>,
}

#[derive(Debug, Default)]
struct Ring {
    records: VecDeque<FlowRecord>,
    next_seq: u64,
}

impl FlowStore {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "twill_flows",
            "New connections and spoofed packets the node's filters logged, by verdict and deciding policy and rule",
            self.flows.clone(),
        );
        r.register(
            "twill_flow_log_problems",
            "Flow log messages lost (socket overruns) or not understood",
            self.problems.clone(),
        );
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.ring.lock().map_or(0, |r| r.next_seq)
    }

    /// Keeps `r` (the oldest record goes when the ring is full) and counts it.
    pub fn push(&self, r: FlowRecord) {
        let labels = FlowLabels {
            verdict: r.verdict.clone(),
            direction: r.direction.clone().unwrap_or_default(),
            tier: r.tier.clone(),
            policy: r.policy.clone().unwrap_or_else(|| r.policies.join(",")),
            rule: r.rule.map(|i| i.to_string()).unwrap_or_default(),
        };
        self.flows.get_or_create(&labels).inc();
        if let Ok(mut ring) = self.ring.lock() {
            ring.next_seq = ring.next_seq.max(r.seq + 1);
            if ring.records.len() == RING {
                ring.records.pop_front();
            }
            ring.records.push_back(r);
        }
    }

    /// Counts a message that made no record: `lost` or `unknown`.
    pub fn problem(&self, problem: &'static str) {
        self.problems.get_or_create(&ProblemLabel { problem }).inc();
    }

    /// The records `q` wants, oldest first, the newest [`MAX_ANSWER`] (or `limit`) of them.
    pub fn query(&self, q: &FlowQuery) -> Vec<FlowRecord> {
        let Ok(ring) = self.ring.lock() else { return Vec::new() };
        let limit = q.limit.unwrap_or(MAX_ANSWER).min(MAX_ANSWER);
        let mut out: Vec<FlowRecord> =
            ring.records.iter().rev().filter(|r| q.matches(r)).take(limit).cloned().collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(seq: u64, verdict: &str, src_pod: Option<&str>) -> FlowRecord {
        FlowRecord {
            seq,
            time: 0.0,
            node: "n1".into(),
            verdict: verdict.into(),
            direction: Some("ingress".into()),
            tier: "NetworkPolicy".into(),
            policy: Some("x/web".into()),
            rule: Some(0),
            policies: Vec::new(),
            reason: "rule".into(),
            proto: "tcp".into(),
            src: "10.0.0.1".parse().unwrap(),
            sport: Some(1),
            dst: "10.0.0.2".parse().unwrap(),
            dport: Some(80),
            src_pod: src_pod.map(str::to_string),
            dst_pod: None,
        }
    }

    #[test]
    fn queries_parse_and_filter() {
        let q = FlowQuery::parse("after=3&denied=true&namespace=x&pod=x%2Fa&limit=10").unwrap();
        let want = FlowQuery {
            after: Some(3),
            denied: true,
            namespace: Some("x".into()),
            pod: Some("x/a".into()),
            limit: Some(10),
        };
        assert_eq!(q, want);
        assert_eq!(FlowQuery::parse("").unwrap(), FlowQuery::default());
        assert!(FlowQuery::parse("after=x").unwrap_err().contains("not a number"));
        assert!(FlowQuery::parse("colour=red").unwrap_err().contains("unknown parameter"));
        assert!(q.matches(&record(4, "denied", Some("x/a"))));
        assert!(!q.matches(&record(3, "denied", Some("x/a"))));
        assert!(!q.matches(&record(4, "allowed", Some("x/a"))));
        assert!(!q.matches(&record(4, "denied", Some("y/a"))));
    }

    #[test]
    fn the_ring_keeps_the_newest_and_counts_everything() {
        let store = FlowStore::default();
        for seq in 0..(RING as u64 + 5) {
            store.push(record(seq, if seq % 2 == 0 { "denied" } else { "allowed" }, None));
        }
        assert_eq!(store.next_seq(), RING as u64 + 5);
        let all = store.query(&FlowQuery { limit: Some(usize::MAX), ..FlowQuery::default() });
        assert_eq!((all.len(), all[0].seq), (MAX_ANSWER, RING as u64 + 5 - MAX_ANSWER as u64));
        let newest =
            store.query(&FlowQuery { after: Some(RING as u64), denied: true, ..FlowQuery::default() });
        assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [RING as u64 + 2, RING as u64 + 4]);
        let mut reg = Registry::default();
        store.register(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(
            text.contains(
                "twill_flows_total{verdict=\"denied\",direction=\"ingress\",tier=\"NetworkPolicy\",policy=\"x/web\",rule=\"0\"} 5003"
            ),
            "{text}"
        );
    }
}
