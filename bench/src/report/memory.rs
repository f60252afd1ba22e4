//! The peak-memory section.

use std::fmt::Write as _;

use super::table;
use crate::memory::MemoryResult;
use crate::provision::Impl;
use crate::stats::{median, ratio};

/// Median peak RSS (MiB) of `plugin`'s ADD for `imp`.
pub fn median_mib(m: &MemoryResult, imp: Impl, plugin: &str) -> Option<f64> {
    let samples = m.max_rss_kib.get(&(imp, plugin.to_string()))?;
    median(&samples.iter().map(|k| *k as f64 / 1024.0).collect::<Vec<_>>())
}

fn max_mib(m: &MemoryResult, imp: Impl, plugin: &str) -> Option<f64> {
    m.max_rss_kib.get(&(imp, plugin.to_string()))?.iter().max().map(|k| *k as f64 / 1024.0)
}

pub fn render(m: &MemoryResult, out: &mut String) {
    let _ = writeln!(out, "## Peak memory of one plugin run\n");
    let _ = writeln!(
        out,
        "Maximum resident set size from wait4(2) of each plugin process the runtime starts for \
         ADD, {} runs per implementation (interleaved). For a reaped child the kernel reports \
         the larger of its own peak and its waited-for children's, so `bridge` (minimal chain) \
         covers the `host-local` it delegates to. Ratio = reference / twill.\n",
        m.runs
    );
    let fmt = |v: Option<f64>| v.map(|v| format!("{v:.1} MiB")).unwrap_or("—".into());
    let rows = [("bridge", "`bridge` ADD with `host-local`"), ("portmap", "`portmap` ADD"), ("bandwidth", "`bandwidth` ADD")]
        .iter()
        .map(|(plugin, label)| {
            let (t, r) = (median_mib(m, Impl::Twill, plugin), median_mib(m, Impl::Reference, plugin));
            vec![
                label.to_string(),
                fmt(t),
                fmt(max_mib(m, Impl::Twill, plugin)),
                fmt(r),
                fmt(max_mib(m, Impl::Reference, plugin)),
                ratio(r, t),
            ]
        })
        .collect();
    table(out, &["plugin run", "twill p50", "twill max", "reference p50", "reference max", "ratio (p50)"], rows);
    for ((imp, chain), e) in &m.errors {
        let _ = writeln!(out, "{} on the {} chain could not be measured: `{e}`\n", imp.label(), chain.short());
    }
}
