//! The IPAM section of the report.

use std::fmt::Write as _;

use crate::ipam_bench::{IpamResult, Samples, Target};
use crate::report::table;
use crate::stats::{median, ms, ratio_value, summarize};

fn lat(s: &[std::time::Duration]) -> [String; 3] {
    match summarize(s) {
        Some(x) => [ms(x.median), ms(x.p90), ms(x.p99)],
        None => ["—".into(), "—".into(), "—".into()],
    }
}

fn secs(s: &[std::time::Duration]) -> Option<f64> {
    summarize(s).map(|x| x.median.as_secs_f64())
}

fn x(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}x")).unwrap_or_else(|| "—".into())
}

fn rate(v: &[f64]) -> String {
    median(v).map(|r| format!("{r:.0}/s")).unwrap_or_else(|| "—".into())
}

pub fn render(r: &IpamResult) -> String {
    let mut out = String::new();
    let c = &r.conf;
    let _ = writeln!(
        out,
        "## IPAM: cluster-wide allocation under 3-node contention against host-local on one node\n"
    );
    let _ = writeln!(
        out,
        "Each round every target allocates {} addresses from a fresh /24 and frees them again, \
         with {} concurrent workers in all: {} per node for the 3-node targets (three node \
         identities, `node_name`, allocating from one pool at once), all {} on the one node for \
         the others. The IPAM plugin is executed directly for every call (process start \
         included, as a runtime pays it); etcd is one member with TLS and client certificates \
         on the bench namespace's loopback, a fresh TLS connection per plugin process. {} \
         round(s), the target going first rotates. Latency over all calls; rates are medians \
         over rounds (allocations or frees per second of wall time). Ratios against the \
         reference `host-local`: its time / target's (below 1: slower), target's rate / its.\n",
        c.allocs,
        c.workers_per_node * 3,
        c.workers_per_node,
        c.workers_per_node * 3,
        c.rounds
    );
    let reference = r.samples.iter().find(|(t, _)| *t == Target::ReferenceHostLocal).map(|(_, s)| s);
    let mut rows = Vec::new();
    for (t, s) in &r.samples {
        let [p50, p90, p99] = lat(&s.adds);
        let vs_time = reference.and_then(|rf| ratio_value(secs(&rf.adds), secs(&s.adds)));
        let vs_rate = reference.and_then(|rf| ratio_value(median(&s.add_rate), median(&rf.add_rate)));
        rows.push(vec![
            t.label().to_string(),
            p50,
            p90,
            p99,
            rate(&s.add_rate),
            x(vs_time),
            x(vs_rate),
            lat(&s.dels)[0].clone(),
            rate(&s.del_rate),
            s.duplicates.to_string(),
            s.errors.len().to_string(),
        ]);
    }
    let head = [
        "target",
        "ADD p50",
        "ADD p90",
        "ADD p99",
        "allocs/s",
        "ADD p50 vs ref",
        "allocs/s vs ref",
        "DEL p50",
        "frees/s",
        "duplicates",
        "errors",
    ];
    table(&mut out, &head, rows);
    out.push('\n');
    for (t, s) in r.samples.iter().filter(|(_, s)| !s.errors.is_empty()) {
        let _ = writeln!(out, "Errors of {} ({} in all), first: `{}`\n", t.label(), s.errors.len(), first(s));
    }
    out
}

fn first(s: &Samples) -> String {
    s.errors.first().map(|e| e.replace('`', "'")).unwrap_or_default()
}
