//! The density section: ADD and DEL cost as pods accumulate on one node, and which plugin
//! the growth comes from.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, errors, mixed_note, table};
use crate::chains::Chain;
use crate::density::{DensityResult, DensitySide, sparse_window_median, window, window_median};
use crate::provision::Impl;
use crate::stats::{median_duration, ms, ratio, ratio_value};

const BOTH: [Impl; 2] = [Impl::Twill, Impl::Reference];

pub fn render(report: &Report, d: &DensityResult, out: &mut String) {
    let c = d.conf;
    let _ = writeln!(out, "## Density: cost as pods accumulate\n");
    let _ = writeln!(
        out,
        "Up to {} pods are added through the kubernetes chain and kept alive (each with its own \
         hostPort and bandwidth limits), on one node per implementation, twill's node filled first \
         and then the reference's: RTNL is one lock for all namespaces, and the kernel's work a \
         second or more after an ADD (the new links' IPv6 DAD, MLD and router solicitations, \
         sent under that lock and flooded through the node's bridge to every pod) would \
         otherwise land in the other side's ADDs. Pod N's ADD runs \
         with N-1 pods alive. Each cell is the median over the {} pods of the window \
         around N (shifted to stay in range); each ADD of a window starts 50 ms after the last \
         operation, so the kernel's deferred work from the step before is done, not timed with \
         it. Teardown times the DEL of the newest {} pods (the \
         rest alive) and of the last {}; the pods between are deleted by {} concurrent workers \
         per node, untimed.\n",
        c.pods,
        2 * c.half_window + 1,
        2 * c.half_window + 1,
        2 * c.half_window + 1,
        c.workers
    );
    mixed_note(report, Chain::Kubernetes, out);
    table(out, &["pod N (window)", "twill ADD", "reference ADD", "ratio"], add_rows(d));
    table(out, &["DEL", "twill", "reference", "ratio"], del_rows(d));
    let points = d.checkpoints();
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = writeln!(
            out,
            "Where ADD growth comes from: each plugin process as the runtime started it, window \
             medians at pod {first} (first) and pod {last} (last); `bridge` includes its \
             `host-local`. The last row is the kernel alone: the bench creates a veth pair (peer in \
             a namespace of its own, an address, link up) in twill's node, holding the same pods as \
             that ADD found, before each ADD of the windows.\n"
        );
    }
    table(
        out,
        &["plugin ADD", "twill first", "twill last", "growth", "reference first", "reference last", "growth"],
        plugin_rows(d),
    );
    let mut summary = Vec::new();
    for imp in BOTH {
        let Some(s) = d.sides.get(&imp) else { continue };
        summary.push(vec![
            imp.label().to_string(),
            s.add.len().to_string(),
            s.duplicates.len().to_string(),
            s.failures.len().to_string(),
            s.leftovers.as_ref().map(|l| l.describe()).unwrap_or("not counted".into()),
            s.error.clone().map(|e| format!("`{e}`")).unwrap_or_else(|| "—".into()),
        ]);
    }
    table(
        out,
        &["", "pods reached", "duplicate IPs", "failed DEL", "leftovers after all DELs", "stopped by"],
        summary,
    );
    for imp in BOTH {
        if let Some(s) = d.sides.get(&imp) {
            let all: Vec<String> = s.failures.iter().chain(&s.duplicates).cloned().collect();
            errors(out, &format!("{} density failures and duplicates", imp.label()), &all);
        }
    }
}

fn secs(x: Option<Duration>) -> Option<f64> {
    x.map(|d| d.as_secs_f64())
}

fn cell(x: Option<Duration>) -> String {
    x.map(ms).unwrap_or("—".into())
}

fn growth(last: Option<Duration>, first: Option<Duration>) -> String {
    ratio_value(secs(last), secs(first)).map(|g| format!("{g:.2}x")).unwrap_or("—".into())
}

/// Window medians of ADD at each checkpoint, then the growth from the first to the last.
fn add_rows(d: &DensityResult) -> Vec<Vec<String>> {
    let half = d.conf.half_window;
    let at = |imp, n| window_median(&d.sides.get(&imp)?.add, n, half);
    let points = d.checkpoints();
    let mut rows = Vec::new();
    for &n in &points {
        let span = window(n, half, d.conf.pods).map(|(lo, hi)| format!("{n} ({lo}–{hi})"));
        let (t, r) = (at(Impl::Twill, n), at(Impl::Reference, n));
        rows.push(vec![span.unwrap_or(n.to_string()), cell(t), cell(r), ratio(secs(r), secs(t))]);
    }
    if let (Some(&first), Some(&last)) = (points.first(), points.last()) {
        rows.push(vec![
            format!("**growth {last} / {first}**"),
            growth(at(Impl::Twill, last), at(Impl::Twill, first)),
            growth(at(Impl::Reference, last), at(Impl::Reference, first)),
            String::new(),
        ]);
    }
    rows
}

fn del_rows(d: &DensityResult) -> Vec<Vec<String>> {
    let med = |imp, top: bool| {
        let s: &DensitySide = d.sides.get(&imp)?;
        median_duration(if top { &s.del_top } else { &s.del_bottom })
    };
    let w = 2 * d.conf.half_window + 1;
    let row = |label: String, top| {
        let (t, r) = (med(Impl::Twill, top), med(Impl::Reference, top));
        vec![label, cell(t), cell(r), ratio(secs(r), secs(t))]
    };
    vec![
        row(format!("newest {w} pods, all others alive"), true),
        row(format!("last {w} pods"), false),
        vec![
            "**growth newest / last**".into(),
            growth(med(Impl::Twill, true), med(Impl::Twill, false)),
            growth(med(Impl::Reference, true), med(Impl::Reference, false)),
            String::new(),
        ],
    ]
}

/// Per plugin: its ADD process time at the first and last checkpoint, for both sides.
fn plugin_rows(d: &DensityResult) -> Vec<Vec<String>> {
    let points = d.checkpoints();
    let (Some(&first), Some(&last)) = (points.first(), points.last()) else { return Vec::new() };
    let at = |imp, plugin: &str, n| {
        let s = d.sides.get(&imp)?;
        let times: Vec<Duration> = s
            .add_runs
            .iter()
            .map(|runs| runs.iter().filter(|r| r.plugin == plugin).map(|r| r.took).sum())
            .collect();
        window_median(&times, n, d.conf.half_window)
    };
    let mut rows: Vec<Vec<String>> = ["bridge", "portmap", "bandwidth"]
        .iter()
        .map(|plugin| {
            let mut row = vec![format!("`{plugin}`")];
            for imp in BOTH {
                let (f, l) = (at(imp, plugin, first), at(imp, plugin, last));
                row.extend([cell(f), cell(l), growth(l, f)]);
            }
            row
        })
        .collect();
    let floor = |n| sparse_window_median(&d.veth_add, n, d.conf.half_window, d.conf.pods);
    let (f, l) = (floor(first), floor(last));
    rows.push(vec![
        "kernel: veth pair + address + up".into(),
        cell(f),
        cell(l),
        growth(l, f),
        "—".into(),
        "—".into(),
        String::new(),
    ]);
    rows
}
