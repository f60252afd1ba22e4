//! The policy section of the report.

use std::fmt::Write as _;
use std::time::Duration;

use crate::policy::{Measure, PolicyResult};
use crate::policy_rules::{PEERS_PER_POLICY, PORTS_PER_POLICY};
use crate::report::table;
use crate::stats::{median, median_duration, ms, ratio_value};

fn med_ms(d: &[Duration]) -> Option<f64> {
    median_duration(d).map(|d| d.as_secs_f64() * 1e3)
}

fn show_ms(d: &[Duration]) -> String {
    median_duration(d).map(ms).unwrap_or_else(|| "—".into())
}

/// The median in microseconds.
fn us(d: &[Duration]) -> Option<f64> {
    median_duration(d).map(|d| d.as_secs_f64() * 1e6)
}

fn show(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}{unit}")).unwrap_or_else(|| "—".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    show(ratio_value(a, b), "x", 2)
}

pub fn render(p: &PolicyResult) -> String {
    let mut out = String::new();
    let c = &p.conf;
    let _ =
        writeln!(out, "## NetworkPolicy: one nftables table against one iptables rule per peer and port\n");
    let _ = writeln!(
        out,
        "N policies in one namespace, each selecting the server pod and allowing {PEERS_PER_POLICY} \
         peers (ipBlock /32) on {PORTS_PER_POLICY} TCP ports; only the last one allows the client \
         pod. twill: `compile` + building the batch, then ONE netlink transaction (what twilld \
         does, no `nft` process). Classic: the same policies as one iptables rule per peer and port in one chain \
         behind `-d SERVER -j` (kube-router's shape, `ESTABLISHED,RELATED` accepted first), \
         loaded by one `iptables-restore` (iptables-nft on this machine). Both on the forward hook \
         of a throw-away node namespace whose bridge carries the two pods (br_netfilter on). With \
         each in place: iperf3 client → server ({} s, 1 stream), and the time to open a TCP \
         connection (connections made one at a time for {} ms, median; the client is allowed on \
         the listener's port, so its SYN is judged by the last rule or set element). {} round(s); \
         the implementation going first alternates; medians over rounds. Ratios are classic / \
         twill for times and twill / classic for throughput (above 1: twill is better).\n",
        c.iperf_secs,
        c.connect_span.as_millis(),
        c.rounds
    );
    let mut rows = Vec::new();
    for s in &p.scales {
        rows.push(vec![
            format!("{}", s.policies),
            format!("{} sets, {} elements", s.sets, s.elements),
            show_ms(&s.twill.build),
            show_ms(&s.twill.apply),
            format!("{} rules", s.classic_rules),
            show_ms(&s.classic.apply),
            ratio(med_ms(&s.classic.apply), med_ms(&s.twill.apply)),
        ]);
    }
    let header = [
        "policies",
        "twill table",
        "twill compile",
        "twill apply",
        "classic chain",
        "classic apply",
        "apply ratio",
    ];
    table(&mut out, &header, rows);
    let mut rows = Vec::new();
    for s in &p.scales {
        let (tg, cg) = (median(&s.twill.gbps), median(&s.classic.gbps));
        let (tc, cc) = (us(&s.twill.connects), us(&s.classic.connects));
        rows.push(vec![
            format!("{}", s.policies),
            show(tg, " Gbit/s", 2),
            show(cg, " Gbit/s", 2),
            ratio(tg, cg),
            show(tc, " µs", 0),
            show(cc, " µs", 0),
            ratio(cc, tc),
        ]);
    }
    let header =
        ["policies", "iperf3 twill", "iperf3 classic", "ratio", "connect twill", "connect classic", "ratio"];
    table(&mut out, &header, rows);
    let _ = writeln!(
        out,
        "Without any policy (measured every round): {}, connect {}.\n",
        show(median(&p.baseline.gbps), " Gbit/s", 2),
        show(us(&p.baseline.connects), " µs", 0)
    );
    let errors: Vec<String> = p
        .scales
        .iter()
        .flat_map(|s| [("twill", &s.twill), ("classic", &s.classic)].map(|(who, m)| (s.policies, who, m)))
        .filter_map(|(n, who, m): (usize, &str, &Measure)| {
            m.error.as_ref().map(|e| format!("{who}, {n} policies: {e}"))
        })
        .collect();
    crate::report::errors(&mut out, "Errors", &errors);
    out
}
