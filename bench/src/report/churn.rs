//! The churn section: throughput and hygiene under concurrent create/delete.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, errors, mixed_note, table};
use crate::churn::{ChurnResult, ChurnRound, ChurnSide};
use crate::provision::Impl;
use crate::stats::{Summary, ms, ratio, summarize};

/// Picks one quantile of a summary.
type Quantile = fn(Summary) -> Duration;
/// Counts something in a round.
type Count = fn(&ChurnRound) -> usize;

pub fn render(report: &Report, c: &ChurnResult, out: &mut String) {
    let conf = c.conf;
    let _ = writeln!(out, "## Churn: concurrent create/delete\n");
    let _ = writeln!(
        out,
        "{} workers attach and detach {} pods per round through the {} chain (each pod its own \
         hostPort), each worker keeping up to {} pods alive so ADDs and DELs overlap; {} rounds, \
         the implementation going first alternating; the workers run inside the fake host, as a \
         runtime's threads do in the host. Pod namespaces are created before the clock starts. A warm-up pod first creates the bridge and the plugins' shared firewall tables; \
         leftovers are counted against the node as it was after that pod, once the kernel has \
         settled.\n",
        conf.workers,
        conf.pods,
        conf.chain.short(),
        conf.live_per_worker,
        conf.rounds
    );
    mixed_note(report, conf.chain, out);
    let (tw, rf) = (c.sides.get(&Impl::Twill), c.sides.get(&Impl::Reference));
    let mut rows = speed_rows(tw, rf);
    rows.extend(hygiene_rows(tw, rf));
    table(out, &["", "twill", "reference", "ratio"], rows);
    for (imp, side) in [(Impl::Twill, tw), (Impl::Reference, rf)] {
        let Some(s) = side else { continue };
        if let Some(e) = &s.error {
            let _ = writeln!(out, "{} could not churn: `{e}`\n", imp.label());
        }
        let all: Vec<String> =
            s.rounds.iter().flat_map(|r| r.failures.iter().chain(&r.duplicates)).cloned().collect();
        errors(out, &format!("{} failures and duplicates", imp.label()), &all);
    }
}

fn speed_rows(tw: Option<&ChurnSide>, rf: Option<&ChurnSide>) -> Vec<Vec<String>> {
    let rate = |s: Option<&ChurnSide>| s.and_then(ChurnSide::pods_per_sec);
    let fmt_rate = |r: Option<f64>| r.map(|r| format!("{r:.1}")).unwrap_or("—".into());
    let mut rows = vec![vec![
        "pods/s (median of rounds)".to_string(),
        fmt_rate(rate(tw)),
        fmt_rate(rate(rf)),
        ratio(rate(tw), rate(rf)) + " (twill / reference)",
    ]];
    let lat = |s: Option<&ChurnSide>, del: bool, q: fn(Summary) -> Duration| {
        s.and_then(|s| summarize(&s.latencies(del))).map(q)
    };
    let quantiles: [(&str, bool, Quantile); 3] = [
        ("ADD p50 under churn", false, |s| s.median),
        ("ADD p99 under churn", false, |s| s.p99),
        ("DEL p50 under churn", true, |s| s.median),
    ];
    for (label, del, q) in quantiles {
        let (t, r) = (lat(tw, del, q), lat(rf, del, q));
        rows.push(vec![
            label.into(),
            t.map(ms).unwrap_or("—".into()),
            r.map(ms).unwrap_or("—".into()),
            ratio(r.map(|d| d.as_secs_f64()), t.map(|d| d.as_secs_f64())) + " (reference / twill)",
        ]);
    }
    rows
}

fn hygiene_rows(tw: Option<&ChurnSide>, rf: Option<&ChurnSide>) -> Vec<Vec<String>> {
    let counts: [(&str, Count); 3] = [
        ("pods attached", |r| r.attached),
        ("duplicate IPs among live pods", |r| r.duplicates.len()),
        ("failed ADD/DEL", |r| r.failures.len()),
    ];
    let count = |s: Option<&ChurnSide>, f| s.map(|s| s.count(f).to_string()).unwrap_or("—".into());
    let mut rows: Vec<Vec<String>> = counts
        .iter()
        .map(|(label, f)| vec![label.to_string(), count(tw, *f), count(rf, *f), String::new()])
        .collect();
    let left = |s: Option<&ChurnSide>| {
        s.and_then(|s| s.leftovers.as_ref()).map(|l| l.describe()).unwrap_or("—".into())
    };
    rows.push(vec!["leftovers afterwards".into(), left(tw), left(rf), String::new()]);
    rows
}
