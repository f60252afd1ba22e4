//! The peak-memory section.

use std::fmt::Write as _;

use super::table;
use crate::memory::{MemoryResult, RUNS, Run};
use crate::provision::Impl;
use crate::stats::{median, ratio};

/// Median peak RSS (MiB) of `plugin`'s ADD for `imp`.
pub fn median_mib(m: &MemoryResult, imp: Impl, run: Run) -> Option<f64> {
    let samples = m.max_rss_kib.get(&(imp, run))?;
    median(&samples.iter().map(|k| *k as f64 / 1024.0).collect::<Vec<_>>())
}

/// The median floor as text.
fn floor(m: &MemoryResult) -> String {
    median(&m.floor_kib.iter().map(|k| *k as f64 / 1024.0).collect::<Vec<_>>())
        .map(|v| format!("{v:.1} MiB"))
        .unwrap_or_else(|| "unknown".into())
}

fn max_mib(m: &MemoryResult, imp: Impl, run: Run) -> Option<f64> {
    m.max_rss_kib.get(&(imp, run))?.iter().max().map(|k| *k as f64 / 1024.0)
}

pub fn render(m: &MemoryResult, out: &mut String) {
    let _ = writeln!(out, "## Peak memory of one plugin run\n");
    let _ = writeln!(
        out,
        "Maximum resident set size (`ru_maxrss` from wait4(2)) of each plugin process the \
         runtime starts for ADD, {} runs per implementation (interleaved). Each plugin is started \
         through a small launcher (twill-bench re-executed) that forks and reaps it: the kernel \
         folds the memory a process had before exec — for a child of a large process, a copy of \
         the parent's — into its peak, so spawning straight from the bench would report the \
         bench's size. The floor of this method, `true` run the same way, is {}. For a reaped \
         child the kernel reports the larger of its own peak and that of every child it waited \
         for, so `bridge` with IPAM and masquerading shows the largest of the bridge, the \
         `host-local` it runs and, for the reference, the `iptables` it runs (twill's plugins \
         run no firewall tool: nf_tables goes over netlink); the next two rows measure the \
         bridge and host-local apart. Ratio = reference / twill; \"before\" is twill's p50 in the \
         last report before nf_tables over netlink (twill still ran `nft` then).\n",
        m.runs,
        floor(m),
    );
    let fmt = |v: Option<f64>| v.map(|v| format!("{v:.1} MiB")).unwrap_or("—".into());
    let rows = RUNS
        .iter()
        .map(|run| {
            let (t, r) = (median_mib(m, Impl::Twill, *run), median_mib(m, Impl::Reference, *run));
            vec![
                run.label().to_string(),
                fmt(t),
                fmt(max_mib(m, Impl::Twill, *run)),
                fmt(Some(super::goals::memory_baseline(*run))),
                fmt(r),
                fmt(max_mib(m, Impl::Reference, *run)),
                ratio(r, t),
            ]
        })
        .collect();
    table(
        out,
        &[
            "plugin run",
            "twill p50",
            "twill max",
            "twill before",
            "reference p50",
            "reference max",
            "ratio (p50)",
        ],
        rows,
    );
    for ((imp, run), e) in &m.errors {
        let _ = writeln!(out, "{} {} could not be measured: `{e}`\n", imp.label(), run.label());
    }
}
