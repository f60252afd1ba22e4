//! The churn and density sections: behaviour under load and with many pods alive.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, errors, table};
use crate::chains::Chain;
use crate::churn::{ChurnResult, ChurnSide};
use crate::density::{DensityResult, DensitySide, window, window_median};
use crate::provision::Impl;
use crate::stats::{median, ms, ratio, ratio_value, summarize};

const BOTH: [Impl; 2] = [Impl::Twill, Impl::Reference];

pub fn render_churn(report: &Report, c: &ChurnResult, out: &mut String) {
    let conf = c.conf;
    let _ = writeln!(out, "## Churn: concurrent create/delete\n");
    let _ = writeln!(
        out,
        "{} workers attach and detach {} pods per round through the {} chain (each pod its own \
         hostPort), each worker keeping up to {} pods alive so ADDs and DELs overlap; {} rounds, \
         the implementation going first alternating. Pod namespaces are created before the clock \
         starts. A warm-up pod first creates the bridge and the plugins' shared firewall tables; \
         leftovers are counted against the node as it was after that pod, once the kernel has \
         settled.\n",
        conf.workers,
        conf.pods,
        conf.chain.short(),
        conf.live_per_worker,
        conf.rounds
    );
    mixed_note(report, conf.chain, out);
    let side = |imp| c.sides.get(&imp);
    let rate = |s: Option<&ChurnSide>| {
        s.and_then(|s| median(&s.rounds.iter().map(|r| r.pods_per_sec()).collect::<Vec<_>>()))
    };
    let (tw, rf) = (side(Impl::Twill), side(Impl::Reference));
    let lat = |s: Option<&ChurnSide>, del: bool, q: fn(crate::stats::Summary) -> Duration| {
        let all: Vec<Duration> =
            s.map(|s| s.rounds.iter().flat_map(|r| if del { &r.del } else { &r.add }).copied().collect()).unwrap_or_default();
        summarize(&all).map(q)
    };
    let mut rows = vec![vec![
        "pods/s (median of rounds)".to_string(),
        rate(tw).map(|r| format!("{r:.1}")).unwrap_or("—".into()),
        rate(rf).map(|r| format!("{r:.1}")).unwrap_or("—".into()),
        ratio(rate(tw), rate(rf)) + " (twill / reference)",
    ]];
    for (label, del, q) in [
        ("ADD p50 under churn", false, (|s| s.median) as fn(crate::stats::Summary) -> Duration),
        ("ADD p99 under churn", false, |s| s.p99),
        ("DEL p50 under churn", true, |s| s.median),
    ] {
        let (t, r) = (lat(tw, del, q), lat(rf, del, q));
        rows.push(vec![
            label.into(),
            t.map(ms).unwrap_or("—".into()),
            r.map(ms).unwrap_or("—".into()),
            ratio(r.map(|d| d.as_secs_f64()), t.map(|d| d.as_secs_f64())) + " (reference / twill)",
        ]);
    }
    let count = |s: Option<&ChurnSide>, f: fn(&crate::churn::ChurnRound) -> usize| {
        s.map(|s| s.rounds.iter().map(f).sum::<usize>().to_string()).unwrap_or("—".into())
    };
    rows.push(vec!["pods attached".into(), count(tw, |r| r.attached), count(rf, |r| r.attached), String::new()]);
    rows.push(vec!["duplicate IPs among live pods".into(), count(tw, |r| r.duplicates.len()), count(rf, |r| r.duplicates.len()), String::new()]);
    rows.push(vec!["failed ADD/DEL".into(), count(tw, |r| r.failures.len()), count(rf, |r| r.failures.len()), String::new()]);
    let left = |s: Option<&ChurnSide>| s.and_then(|s| s.leftovers.as_ref()).map(|l| l.describe()).unwrap_or("—".into());
    rows.push(vec!["leftovers afterwards".into(), left(tw), left(rf), String::new()]);
    table(out, &["", "twill", "reference", "ratio"], rows);
    for imp in BOTH {
        if let Some(s) = side(imp) {
            if let Some(e) = &s.error {
                let _ = writeln!(out, "{} could not churn: `{e}`\n", imp.label());
            }
            let all: Vec<String> = s.rounds.iter().flat_map(|r| r.failures.iter().chain(&r.duplicates)).cloned().collect();
            errors(out, &format!("{} failures and duplicates", imp.label()), &all);
        }
    }
}

pub fn render_density(report: &Report, d: &DensityResult, out: &mut String) {
    let _ = writeln!(out, "## Density: cost as pods accumulate\n");
    let _ = writeln!(
        out,
        "Up to {} pods are added through the kubernetes chain and kept alive (each with its own \
         hostPort and bandwidth limits), the implementation going first alternating per pod; then \
         they are deleted newest first. Pod N's ADD runs with N-1 pods alive; its DEL with N. Each \
         cell is the median over the pods in the window around N ({} on each side, shifted to stay \
         in range).\n",
        d.pods, d.half_window
    );
    mixed_note(report, Chain::Kubernetes, out);
    let side = |imp| d.sides.get(&imp);
    let at = |imp, del: bool, n| {
        side(imp).and_then(|s: &DensitySide| window_median(if del { &s.del } else { &s.add }, n, d.half_window))
    };
    let secs = |x: Option<Duration>| x.map(|d| d.as_secs_f64());
    let mut rows = Vec::new();
    for n in d.checkpoints() {
        let span = window(n, d.half_window, d.pods).map(|(lo, hi)| format!("{n} ({lo}–{hi})")).unwrap_or(n.to_string());
        let mut row = vec![span];
        for del in [false, true] {
            let (t, r) = (at(Impl::Twill, del, n), at(Impl::Reference, del, n));
            row.push(t.map(ms).unwrap_or("—".into()));
            row.push(r.map(ms).unwrap_or("—".into()));
            row.push(ratio(secs(r), secs(t)));
        }
        rows.push(row);
    }
    if let (Some(&first), Some(&last)) = (d.checkpoints().first(), d.checkpoints().last()) {
        let growth = |imp, del| ratio_value(secs(at(imp, del, last)), secs(at(imp, del, first)));
        let fmt = |g: Option<f64>| g.map(|g| format!("{g:.2}x")).unwrap_or("—".into());
        rows.push(vec![
            format!("**growth {last} / {first}**"),
            fmt(growth(Impl::Twill, false)),
            fmt(growth(Impl::Reference, false)),
            String::new(),
            fmt(growth(Impl::Twill, true)),
            fmt(growth(Impl::Reference, true)),
            String::new(),
        ]);
    }
    table(out, &["pod N (window)", "twill ADD", "reference ADD", "ratio", "twill DEL", "reference DEL", "ratio"], rows);
    let mut summary = Vec::new();
    for imp in BOTH {
        let Some(s) = side(imp) else { continue };
        let left = s.leftovers.as_ref().map(|l| l.describe()).unwrap_or("not counted".into());
        summary.push(vec![
            imp.label().to_string(),
            s.add.len().to_string(),
            s.duplicates.len().to_string(),
            s.failures.len().to_string(),
            left,
            s.error.clone().map(|e| format!("`{e}`")).unwrap_or_else(|| "—".into()),
        ]);
    }
    table(out, &["", "pods reached", "duplicate IPs", "failed DEL", "leftovers after all DELs", "stopped by"], summary);
    for imp in BOTH {
        if let Some(s) = side(imp) {
            let all: Vec<String> = s.failures.iter().chain(&s.duplicates).cloned().collect();
            errors(out, &format!("{} density failures and duplicates", imp.label()), &all);
        }
    }
}

fn mixed_note(report: &Report, chain: Chain, out: &mut String) {
    let borrowed = report.borrowed(chain);
    if !borrowed.is_empty() {
        let _ = writeln!(out, "twill's side runs the reference {} in this chain.\n", borrowed.join(", "));
    }
}
