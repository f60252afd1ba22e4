//! The density section: ADD and DEL cost as pods accumulate on one node.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, errors, mixed_note, table};
use crate::chains::Chain;
use crate::density::{DensityResult, window, window_median};
use crate::provision::Impl;
use crate::stats::{ms, ratio, ratio_value};

pub fn render(report: &Report, d: &DensityResult, out: &mut String) {
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
    table(
        out,
        &["pod N (window)", "twill ADD", "reference ADD", "ratio", "twill DEL", "reference DEL", "ratio"],
        checkpoint_rows(d),
    );
    let mut summary = Vec::new();
    for imp in [Impl::Twill, Impl::Reference] {
        let Some(s) = d.sides.get(&imp) else { continue };
        summary.push(vec![
            imp.label().to_string(),
            s.add.len().to_string(),
            s.duplicates.len().to_string(),
            s.failures.len().to_string(),
            s.leftovers.as_ref().map(|l| l.describe()).unwrap_or("not counted".into()),
            s.error.clone().map(|e| format!("`{e}`")).unwrap_or_else(|| "—".into()),
        ]);
        let all: Vec<String> = s.failures.iter().chain(&s.duplicates).cloned().collect();
        errors(out, &format!("{} density failures and duplicates", imp.label()), &all);
    }
    table(
        out,
        &["", "pods reached", "duplicate IPs", "failed DEL", "leftovers after all DELs", "stopped by"],
        summary,
    );
}

/// Window medians at each checkpoint, then the growth from the first to the last.
fn checkpoint_rows(d: &DensityResult) -> Vec<Vec<String>> {
    let at = |imp, del: bool, n| {
        let s = d.sides.get(&imp)?;
        window_median(if del { &s.del } else { &s.add }, n, d.half_window)
    };
    let secs = |x: Option<Duration>| x.map(|d| d.as_secs_f64());
    let points = d.checkpoints();
    let mut rows = Vec::new();
    for &n in &points {
        let span = window(n, d.half_window, d.pods).map(|(lo, hi)| format!("{n} ({lo}–{hi})"));
        let mut row = vec![span.unwrap_or(n.to_string())];
        for del in [false, true] {
            let (t, r) = (at(Impl::Twill, del, n), at(Impl::Reference, del, n));
            row.extend([t.map(ms).unwrap_or("—".into()), r.map(ms).unwrap_or("—".into())]);
            row.push(ratio(secs(r), secs(t)));
        }
        rows.push(row);
    }
    if let (Some(&first), Some(&last)) = (points.first(), points.last()) {
        let growth = |imp, del| {
            let g = ratio_value(secs(at(imp, del, last)), secs(at(imp, del, first)));
            g.map(|g| format!("{g:.2}x")).unwrap_or("—".into())
        };
        rows.push(vec![
            format!("**growth {last} / {first}**"),
            growth(Impl::Twill, false),
            growth(Impl::Reference, false),
            String::new(),
            growth(Impl::Twill, true),
            growth(Impl::Reference, true),
            String::new(),
        ]);
    }
    rows
}
