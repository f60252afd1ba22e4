//! The datapath section: throughput and RTT against the bare-veth floor.

use std::fmt::Write as _;

use super::table;
use crate::datapath::{DatapathResult, PathResult, Sample, Target};
use crate::provision::Impl;
use crate::stats::{median, ratio_value};

/// Median over rounds of one measure of one path.
pub fn median_of(p: Option<&PathResult>, pick: fn(&Sample) -> f64) -> Option<f64> {
    median(&p?.samples.iter().map(pick).collect::<Vec<_>>())
}

pub fn gbps_1(s: &Sample) -> f64 {
    s.gbps_1
}

pub fn gbps_4(s: &Sample) -> f64 {
    s.gbps_4
}

fn rtt_us(s: &Sample) -> f64 {
    s.rtt.as_secs_f64() * 1e6
}

/// ` (min–max)` over the rounds, when there was more than one.
fn spread(p: Option<&PathResult>, pick: fn(&Sample) -> f64) -> String {
    let values: Vec<f64> = p.map(|p| p.samples.iter().map(pick).collect()).unwrap_or_default();
    let min = values.iter().copied().reduce(f64::min);
    let max = values.iter().copied().reduce(f64::max);
    match (min, max) {
        (Some(lo), Some(hi)) if values.len() > 1 => format!(" ({lo:.1}–{hi:.1})"),
        _ => String::new(),
    }
}

pub fn render(d: &DatapathResult, out: &mut String) {
    let c = d.conf;
    let _ = writeln!(out, "## Datapath: pod to pod on one bridge\n");
    let _ = writeln!(
        out,
        "Two pods attached through each implementation's minimal chain exchange TCP with iperf3 \
         ({} s per run, 1 and 4 streams; server pinned to CPU 1, client to CPU 0) and ping ({} echoes 10 ms apart, median RTT). The floor \
         is a bare veth pair between two namespaces. {} rounds; the path going first rotates. \
         Values are medians over rounds (min–max in brackets); ratio = path / floor of the \
         medians (throughput: higher is better, 1.00 is the floor; RTT: lower is better). Two \
         cores carry client, server and softirq work, and whatever else runs on the machine, so \
         rounds vary.\n",
        c.secs, c.ping_count, c.rounds
    );
    let floor = d.paths.get(&Target::Floor);
    let mut rows = Vec::new();
    for target in [Target::Floor, Target::Impl(Impl::Twill), Target::Impl(Impl::Reference)] {
        let p = d.paths.get(&target);
        let mut row = vec![target.label().to_string()];
        for (pick, unit) in [(gbps_1 as fn(&Sample) -> f64, "Gbit/s"), (gbps_4, "Gbit/s"), (rtt_us, "µs")] {
            let v = median_of(p, pick);
            row.push(v.map(|v| format!("{v:.1} {unit}{}", spread(p, pick))).unwrap_or("—".into()));
            row.push(ratio_value(v, median_of(floor, pick)).map(|r| format!("{r:.2}")).unwrap_or("—".into()));
        }
        rows.push(row);
    }
    table(out, &["path", "1 stream", "/ floor", "4 streams", "/ floor", "ping RTT p50", "/ floor"], rows);
    for (target, p) in &d.paths {
        if let Some(e) = &p.error {
            let _ = writeln!(out, "{} could not be measured: `{e}`\n", target.label());
        }
    }
}
