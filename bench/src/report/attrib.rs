//! The attribution section: where each twill plugin process's time goes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, table};
use crate::attrib::AttribResult;
use crate::chains::{CHAINS, Chain};
use crate::provision::Impl;
use crate::stats::{median_duration, ms};
use crate::strace_split::Split;

/// The kernel-side categories, in column order.
type Pick = fn(&Split) -> Duration;
const KERNEL: [(&str, Pick); 6] = [
    ("rtnetlink", |s| s.rtnetlink),
    ("nf_tables + conntrack", |s| s.netfilter),
    ("IPAM file I/O", |s| s.ipam),
    ("sysctl", |s| s.sysctl),
    ("netns threads", |s| s.netns),
    ("other syscalls", |s| s.other_syscalls),
];

pub fn render(report: &Report, a: &AttribResult, out: &mut String) {
    let _ = writeln!(out, "## Where each millisecond of twill's plugins goes\n");
    let _ = writeln!(
        out,
        "Per plugin process and verb: its untraced median (latency part), the cost of starting a \
         process at all (`bridge` VERSION, latency part), and the kernel time of its system calls \
         by what they waited on, from {} pods per chain whose plugins ran under `strace -f -ttt -T \
         -yy` (mean per run): NETLINK_ROUTE sockets (links, addresses, routes, tc), \
         NETLINK_NETFILTER sockets (nf_tables batches and element reads, conntrack — closing \
         the socket after a deletion waits for the kernel's deferred destruction, an RCU grace \
         period, and counts here), files of the IPAM data dir and its lock (host-local's \
         reservations), `/proc/sys`, entering namespaces on short-lived threads, and \
         other system calls (reading the config, writing the result). The remainder is user-space \
         work and scheduling. Waits for threads are not counted, but the work of a thread is, so \
         where a DEL deletes the veth on a thread of its own while the rest goes on, the columns \
         add up to more than the total (the remainder then shows \"overlap\").\n",
        a.pods
    );
    let mut groups: BTreeMap<(Chain, String, &'static str), Vec<Split>> = BTreeMap::new();
    for (chain, run) in &a.runs {
        if let Some(s) = run.split {
            groups.entry((*chain, run.plugin.clone(), run.command)).or_default().push(s);
        }
    }
    if groups.values().flatten().all(|s| s.total.is_zero()) {
        // Every trace empty or unreadable: a table of zeros would read as "no time spent".
        let _ = writeln!(out, "**Not measured**: none of the {} traces could be read.\n", a.runs.len());
        return;
    }
    let untraced = untraced(report);
    let start =
        report.latency.as_ref().and_then(|l| l.exec_floor.get(&Impl::Twill)).and_then(|v| median_duration(v));
    let mut rows = Vec::new();
    for chain in CHAINS {
        for plugin in chain.plugins().iter().filter(|p| **p != "host-local") {
            for verb in ["ADD", "CHECK", "DEL"] {
                let Some(splits) = groups.get(&(chain, plugin.to_string(), verb)) else { continue };
                let total = untraced.get(&(chain, plugin.to_string(), verb)).copied();
                rows.push(row(chain, plugin, verb, splits, total, start));
            }
        }
    }
    let mut header = vec!["chain", "plugin and verb", "untraced p50", "process start"];
    header.extend(KERNEL.iter().map(|(name, _)| *name));
    header.push("remainder");
    table(out, &header, rows);
}

/// Untraced median of each plugin run in the latency part.
fn untraced(report: &Report) -> BTreeMap<(Chain, String, &'static str), Duration> {
    let mut samples: BTreeMap<(Chain, String, &'static str), Vec<Duration>> = BTreeMap::new();
    if let Some(l) = &report.latency {
        for ((imp, chain), series) in &l.series {
            for run in series.runs.iter().filter(|_| *imp == Impl::Twill) {
                samples.entry((*chain, run.plugin.clone(), run.command)).or_default().push(run.took);
            }
        }
    }
    samples.into_iter().filter_map(|(k, v)| Some((k, median_duration(&v)?))).collect()
}

fn mean(splits: &[Split], pick: Pick) -> Duration {
    let sum: Duration = splits.iter().map(pick).sum();
    sum / splits.len().max(1) as u32
}

fn row(
    chain: Chain,
    plugin: &str,
    verb: &str,
    splits: &[Split],
    total: Option<Duration>,
    start: Option<Duration>,
) -> Vec<String> {
    let dash = || "—".to_string();
    let mut row = vec![
        chain.short().to_string(),
        format!("`{plugin}` {verb}"),
        total.map(ms).unwrap_or_else(dash),
        start.map(ms).unwrap_or_else(dash),
    ];
    let mut known = start.unwrap_or_default();
    for (_, pick) in KERNEL {
        let m = mean(splits, pick);
        known += m;
        row.push(ms(m));
    }
    row.push(match total {
        Some(t) if t >= known => ms(t - known),
        Some(_) => "overlap".into(),
        None => dash(),
    });
    row
}
