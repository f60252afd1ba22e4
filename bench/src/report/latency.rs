//! The per-verb latency section.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Report, errors, mixed_note, table};
use crate::chains::{CHAINS, Chain};
use crate::latency::{LatencyResult, Series};
use crate::provision::Impl;
use crate::stats::{Summary, median_duration, ms, ratio, summarize};

/// Picks one verb's samples of a series.
type Samples = fn(&Series) -> &Vec<Duration>;

pub fn render(report: &Report, l: &LatencyResult, out: &mut String) {
    let _ = writeln!(out, "## Per-verb latency (whole chain, as the runtime sees it)\n");
    let _ = writeln!(
        out,
        "{} measured iterations after {} warm-up ones. Each iteration, for each implementation \
         (the one going first alternates) and each chain: a pod namespace is created (not timed), \
         then ADD, CHECK and DEL are timed through `cni_exec::Runtime` with its `RawExec`, on a \
         thread inside the fake host (as a runtime lives in the host's namespace, so plugins are \
         started from there: `posix_spawn`, no namespace switch per plugin). The \
         Kubernetes-chain pod has one hostPort and ingress/egress bandwidth limits. Ratio = \
         reference / twill at the median: above 1 means twill is faster.\n",
        l.iterations, l.warmup
    );
    for chain in CHAINS {
        chain_table(report, l, chain, out);
    }
    guard_cost(l, out);
    breakdown(l, out);
    floor(l, out);
    kernel_floors(l, out);
}

fn chain_table(report: &Report, l: &LatencyResult, chain: Chain, out: &mut String) {
    let _ = writeln!(out, "### {}\n", chain.label());
    mixed_note(report, chain, out);
    let get = |imp| l.series.get(&(imp, chain));
    let (tw, rf) = (get(Impl::Twill), get(Impl::Reference));
    let verbs: [(&str, Samples); 4] =
        [("ADD", |s| &s.add), ("CHECK", |s| &s.check), ("DEL", |s| &s.del), ("**ADD+DEL**", |s| &s.add_del)];
    let rows = verbs
        .iter()
        .map(|(verb, pick)| {
            let t = tw.and_then(|s| summarize(pick(s)));
            let r = rf.and_then(|s| summarize(pick(s)));
            let mut row = vec![verb.to_string()];
            row.extend(cells(t));
            row.extend(cells(r));
            row.push(ratio(r.map(|s| s.median.as_secs_f64()), t.map(|s| s.median.as_secs_f64())));
            row
        })
        .collect();
    table(out, &["verb", "twill p50", "p90", "p99", "reference p50", "p90", "p99", "ratio (p50)"], rows);
    for (imp, series) in [(Impl::Twill, tw), (Impl::Reference, rf)] {
        if let Some(s) = series {
            let title = format!(
                "{} failures on the {} chain{}",
                imp.label(),
                chain.short(),
                if s.gave_up() { " (the series stopped after them)" } else { "" }
            );
            errors(out, &title, &s.failures);
            let title = format!("{} CHECK failures on the {} chain", imp.label(), chain.short());
            errors(out, &title, &s.check_failures);
            if s.check_failures.iter().any(|e| e.contains("could not check ipv6 dnat")) {
                let _ = writeln!(
                    out,
                    "That is the reference portmap's known bug containernetworking/plugins#819: \
                     its CHECK looks for IPv6 rules of a pod that has only IPv4, so the chain's \
                     CHECK fails (ADD and DEL above are unaffected).\n"
                );
            }
        }
    }
}

/// twill's minimal chain with and without `spoofchk`, run in the same iterations.
fn guard_cost(l: &LatencyResult, out: &mut String) {
    let get = |chain| l.series.get(&(Impl::Twill, chain));
    let (plain, guarded) = (get(Chain::Minimal), get(Chain::Guarded));
    let verbs: [(&str, Samples); 3] = [("ADD", |s| &s.add), ("CHECK", |s| &s.check), ("DEL", |s| &s.del)];
    let rows = verbs
        .iter()
        .map(|(verb, pick)| {
            let p = plain.and_then(|s| median_duration(pick(s)));
            let g = guarded.and_then(|s| median_duration(pick(s)));
            let x = ratio(g.map(|d| d.as_secs_f64()), p.map(|d| d.as_secs_f64()));
            vec![verb.to_string(), p.map(ms).unwrap_or("—".into()), g.map(ms).unwrap_or("—".into()), x]
        })
        .collect();
    let _ = writeln!(
        out,
        "### Anti-spoofing: the minimal chain with `spoofchk` (twill)\n\nRun in the same \
         iterations as the minimal chain. With the option, `bridge` adds the pod's port, MAC \
         and addresses to `table bridge twill_guard` in the batch that already carries its \
         masquerade rule; ratio = with / without (1 = free).\n"
    );
    table(out, &["verb", "without p50", "with spoofchk p50", "ratio"], rows);
    if let Some(s) = guarded {
        errors(out, "twill failures with spoofchk", &s.failures);
        errors(out, "twill CHECK failures with spoofchk", &s.check_failures);
    }
}

fn cells(s: Option<Summary>) -> Vec<String> {
    match s {
        Some(s) => vec![ms(s.median), ms(s.p90), ms(s.p99)],
        None => vec!["—".into(), "—".into(), "—".into()],
    }
}

/// Median time of each plugin process, per verb, as the runtime started it.
fn breakdown(l: &LatencyResult, out: &mut String) {
    let mut times: BTreeMap<(Chain, String, &'static str, Impl), Vec<Duration>> = BTreeMap::new();
    for ((imp, chain), series) in &l.series {
        for run in &series.runs {
            times.entry((*chain, run.plugin.clone(), run.command, *imp)).or_default().push(run.took);
        }
    }
    let mut rows = Vec::new();
    for chain in CHAINS {
        for plugin in chain.plugins().iter().filter(|p| **p != "host-local") {
            for verb in ["ADD", "CHECK", "DEL"] {
                let med =
                    |imp| times.get(&(chain, plugin.to_string(), verb, imp)).and_then(|v| median_duration(v));
                let (t, r) = (med(Impl::Twill), med(Impl::Reference));
                if t.is_none() && r.is_none() {
                    continue;
                }
                rows.push(vec![
                    chain.short().into(),
                    format!("`{plugin}` {verb}"),
                    t.map(ms).unwrap_or_else(|| "—".into()),
                    r.map(ms).unwrap_or_else(|| "—".into()),
                    ratio(r.map(|d| d.as_secs_f64()), t.map(|d| d.as_secs_f64())),
                ]);
            }
        }
    }
    let _ = writeln!(
        out,
        "### Where the time goes: each plugin process (p50)\n\n`bridge` includes the \
         `host-local` it runs as its IPAM plugin.\n"
    );
    table(out, &["chain", "plugin and verb", "twill", "reference", "ratio"], rows);
}

fn floor(l: &LatencyResult, out: &mut String) {
    let med = |imp| l.exec_floor.get(&imp).and_then(|v| median_duration(v));
    let (t, r) = (med(Impl::Twill), med(Impl::Reference));
    let _ = writeln!(
        out,
        "### Floor: starting a plugin process at all\n\n`bridge` answering VERSION (no kernel \
         work), started by the same executor in the fake host: twill {}, reference {} \
         (ratio {}).\n",
        t.map(ms).unwrap_or_else(|| "—".into()),
        r.map(ms).unwrap_or_else(|| "—".into()),
        ratio(r.map(|d| d.as_secs_f64()), t.map(|d| d.as_secs_f64())),
    );
}

/// The kernel's floors measured in the same iterations, and each chain's DEL against them.
fn kernel_floors(l: &LatencyResult, out: &mut String) {
    let f = &l.floors;
    let _ = writeln!(
        out,
        "### Floor: what the kernel itself takes\n\nMeasured in every iteration, in a fake host and \
         pod namespace of its own, through netlink from the bench: a veth pair with its peer in the \
         pod, an address and the link up; deleting that pair (an RCU grace period inside the \
         kernel: the floor of every DEL that removes an interface); deleting an IFB (what \
         `bandwidth` DEL does besides); deleting one nf_tables set element in a batch and closing \
         the socket (what `portmap` DEL does besides: when a netfilter socket goes, nf_tables \
         first finishes freeing what earlier batches deleted, which waits for an RCU grace \
         period). \
         The Kubernetes chain's DEL runs its plugins one after the other, so its floor is the sum \
         of the three.\n"
    );
    let rows = [
        ("veth pair + address + up", &f.veth_add),
        ("delete the veth pair", &f.veth_del),
        ("delete an IFB", &f.ifb_del),
        ("delete an nf_tables element + close", &f.nft_del),
    ]
    .iter()
    .map(|(what, samples)| {
        let s = summarize(samples);
        let mut row = vec![what.to_string()];
        row.extend(cells(s));
        row
    })
    .collect();
    table(out, &["kernel operation", "p50", "p90", "p99"], rows);
    let veth = median_duration(&f.veth_del);
    let ifb = median_duration(&f.ifb_del);
    let nft = median_duration(&f.nft_del);
    let rows = CHAINS
        .iter()
        .map(|chain| {
            let del = l.series.get(&(Impl::Twill, *chain)).and_then(|s| median_duration(&s.del));
            let x =
                |floor: Option<Duration>| ratio(del.map(|d| d.as_secs_f64()), floor.map(|d| d.as_secs_f64()));
            let both = veth.zip(ifb).map(|(a, b)| a + b);
            let all = both.zip(nft).map(|(a, b)| a + b);
            vec![chain.short().to_string(), del.map(ms).unwrap_or("—".into()), x(veth), x(both), x(all)]
        })
        .collect();
    let head = [
        "chain",
        "twill DEL p50",
        "/ veth delete",
        "/ (veth + IFB delete)",
        "/ (veth + IFB + nf_tables delete)",
    ];
    table(out, &head, rows);
}
