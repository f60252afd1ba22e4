//! Issue 15's targets beyond speed: DEL at the kernel's floor, churn, and peak memory no
//! higher than before twill programmed nf_tables over netlink; issue 16's anti-spoofing at no
//! extra cost on ADD.

use super::Report;
use super::memory::median_mib;
use super::targets::{Row, not_measured, verdict};
use crate::chains::Chain;
use crate::memory::{RUNS, Run};
use crate::provision::Impl;
use crate::stats::{median_duration, ms};

/// twill's peak RSS per plugin run (MiB, p50) in the last report before issue 15
/// (bench/RESULTS.md of 2026-11-25, commit 64af751), when the plugins still ran `nft`.
pub fn memory_baseline(run: Run) -> f64 {
    match run {
        Run::BridgeWithHostLocal => 4.8,
        Run::BridgeAlone => 4.1,
        Run::HostLocal => 3.2,
        Run::Portmap => 4.8,
        Run::Bandwidth => 4.1,
    }
}

/// The chain's DEL (p50) against the veth-delete floor measured in the same run; the
/// Kubernetes chain also deletes an IFB (bandwidth) and nf_tables elements (portmap), whose
/// floors are added beside.
pub fn del_floor(report: &Report, chain: Chain) -> Row {
    let goal = format!("{} chain: DEL ≤ 1.3x the kernel's veth-delete floor (p50, same run)", chain.short());
    let Some(l) = &report.latency else { return not_measured(goal, "latency part not run") };
    let del = l.series.get(&(Impl::Twill, chain)).and_then(|s| median_duration(&s.del));
    let (Some(del), Some(veth)) = (del, median_duration(&l.floors.veth_del)) else {
        return not_measured(goal, "no DEL or floor samples: see the latency section");
    };
    let x = del.as_secs_f64() / veth.as_secs_f64();
    let mut measured = format!("{x:.2}x (twill DEL {}, veth delete {})", ms(del), ms(veth));
    if chain == Chain::Kubernetes
        && let Some(ifb) = median_duration(&l.floors.ifb_del)
        && let Some(nft) = median_duration(&l.floors.nft_del)
    {
        let all = veth + ifb + nft;
        let x = del.as_secs_f64() / all.as_secs_f64();
        measured += &format!("; {x:.2}x of the chain's floors, veth + IFB + nf_tables delete ({})", ms(all));
    }
    Row { goal, measured, verdict: verdict(x <= 1.3) }
}

pub fn churn(report: &Report) -> Row {
    let goal = "churn: ≥ 5x the reference's pods/s (median of rounds)".to_string();
    let Some(c) = &report.churn else { return not_measured(goal, "churn part not run") };
    let rate = |imp| c.sides.get(&imp).and_then(|s| s.pods_per_sec());
    let (Some(t), Some(r)) = (rate(Impl::Twill), rate(Impl::Reference)) else {
        return not_measured(goal, "a side failed: see the churn section");
    };
    let x = t / r;
    Row { goal, measured: format!("{x:.2}x ({t:.1} vs {r:.1} pods/s)"), verdict: verdict(x >= 5.0) }
}

pub fn memory(report: &Report) -> Row {
    let goal = "peak memory of every plugin run no higher than before (twill, p50)".to_string();
    let Some(m) = &report.memory else { return not_measured(goal, "memory part not run") };
    let mut parts = Vec::new();
    let mut met = true;
    for run in RUNS {
        let Some(now) = median_mib(m, Impl::Twill, run) else {
            return not_measured(goal, &format!("{} not measured", run.label()));
        };
        let before = memory_baseline(run);
        // Both are printed to 0.1 MiB; a difference below that is no change.
        met &= now <= before + 0.05;
        parts.push(format!("{} {now:.1} (was {before:.1})", run.short()));
    }
    Row { goal, measured: format!("MiB: {}", parts.join(", ")), verdict: verdict(met) }
}

/// Within this share of the minimal chain's ADD, `spoofchk` counts as free: the two series
/// run interleaved in the same iterations, and their medians differ by more than this from
/// one run to the next on a loaded machine.
pub const GUARD_NOISE: f64 = 0.05;

/// twill's minimal-chain ADD with `spoofchk` against without (p50, same iterations).
pub fn guard_cost(report: &Report) -> Row {
    let goal = format!("spoofchk: no extra cost on ADD (twill, p50, within {:.0}%)", GUARD_NOISE * 100.0);
    let Some(l) = &report.latency else { return not_measured(goal, "latency part not run") };
    let med = |chain| l.series.get(&(Impl::Twill, chain)).and_then(|s| median_duration(&s.add));
    let (Some(plain), Some(guarded)) = (med(Chain::Minimal), med(Chain::Guarded)) else {
        return not_measured(goal, "a series failed: see the latency section");
    };
    let x = guarded.as_secs_f64() / plain.as_secs_f64();
    let measured = format!("{x:.2}x (with {}, without {})", ms(guarded), ms(plain));
    Row { goal, measured, verdict: verdict(x <= 1.0 + GUARD_NOISE) }
}
