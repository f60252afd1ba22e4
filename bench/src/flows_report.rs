//! The flows section of the report.

use std::fmt::Write as _;

use crate::flows::{FlowsResult, POLICIES};
use crate::report::table;
use crate::stats::{median, median_duration, ratio_value};

fn show(v: Option<f64>, unit: &str, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}{unit}")).unwrap_or_else(|| "—".into())
}

pub fn render(f: &FlowsResult) -> String {
    let mut out = String::new();
    let c = &f.conf;
    let _ = writeln!(out, "## Flow logs: the datapath with `--flow-logs` off, denied and all\n");
    let _ = writeln!(
        out,
        "twill's policy table for {POLICIES} policies (the policy part's workload; the client \
         is allowed to the server) in the policy part's node namespace, compiled with each mode, \
         while twilld's flow log reader drains the nflog group there. New TCP connections made \
         one at a time for {} ms (connections per second, median connect time) and iperf3 \
         ({} s, 1 stream) through it. `denied` logs only refused connections, so allowed \
         traffic meets no log statement; `all` logs the first packet of every new connection on \
         each side it is judged (the client's egress, unselected: `no policy`; the server's \
         ingress: the rule). {} round(s), the first mode rotating; medians over rounds; ratios \
         are mode / off (1.00: no cost). A connection slower than {} ms waited for a SYN \
         retransmission (its port met an earlier connection's state; it happens with logs off \
         too): such stalls are counted apart and their time left out of the rate. The reader's \
         CPU is its thread's time on the CPU (/proc schedstat, nanoseconds) over the records it \
         made in the connection phase.\n",
        c.connect_span.as_millis(),
        c.iperf_secs,
        c.rounds,
        crate::flows::STALL.as_millis()
    );
    let off = f.modes.iter().find(|(m, _)| *m == policy::FlowLogs::Off).map(|(_, m)| m);
    let (off_rate, off_gbps) = (off.and_then(|m| median(&m.rates)), off.and_then(|m| median(&m.gbps)));
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (mode, m) in &f.modes {
        let (rate, gbps) = (median(&m.rates), median(&m.gbps));
        let connect = median_duration(&m.connects).map(|d| d.as_secs_f64() * 1e6);
        rows.push(vec![
            format!("{mode:?}").to_lowercase(),
            show(rate, "/s", 0),
            show(ratio_value(rate, off_rate), "x", 2),
            show(connect, " µs", 0),
            show(gbps, " Gbit/s", 2),
            show(ratio_value(gbps, off_gbps), "x", 2),
            show(median(&m.records_per_conn), "", 2),
            show(median_duration(&m.reader_cpu_per_record).map(|d| d.as_secs_f64() * 1e6), " µs", 1),
            m.stalls.iter().sum::<usize>().to_string(),
        ]);
        if let Some(e) = &m.error {
            errors.push(format!("{mode:?}: {e}"));
        }
    }
    let header = [
        "flow logs",
        "connections",
        "ratio",
        "connect",
        "iperf3",
        "ratio",
        "records / connection",
        "reader CPU / record",
        "stalls",
    ];
    table(&mut out, &header, rows);
    crate::report::errors(&mut out, "Errors", &errors);
    out
}
