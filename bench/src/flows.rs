//! Flows: what flow logs cost the datapath. The policy bench's node (bridge, br_netfilter,
//! server and client pods) holds twill's policy table for [`POLICIES`] policies compiled with
//! `--flow-logs off`, `denied` and `all` in turn, while twilld's own reader
//! (`twill_agent::flows`) drains the nflog group in the node namespace, as on a node. With
//! each: new connections per second (one at a time, each opened and reset) and their median
//! time, and iperf3 throughput (only a connection's first packet is logged, so a long
//! transfer should not notice). The modes take turns, the first rotating per round.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent::flows::{FlowStore, SharedView};
use anyhow::{Context, Result};
use policy::{FlowLogs, apply_batch, compile_logged, delete_batch};

use crate::lab::Lab;
use crate::policy_bed::Bed;
use crate::policy_rules::build_world;
use crate::signals;

/// Policies in the table: enough that the table is not trivial, as on a real node.
pub const POLICIES: usize = 100;
/// A connection slower than this waited for a retransmission: its SYN met the state of an
/// earlier connection on the same port (it happens without any table too).
pub const STALL: Duration = Duration::from_millis(200);
pub const MODES: [FlowLogs; 3] = [FlowLogs::Off, FlowLogs::Denied, FlowLogs::All];

#[derive(Clone, Debug)]
pub struct FlowsConf {
    pub rounds: usize,
    pub iperf_secs: u32,
    pub connect_span: Duration,
}

/// Samples of one mode.
#[derive(Clone, Debug, Default)]
pub struct ModeMeasure {
    /// Connections per second of the time not spent in stalls.
    pub rates: Vec<f64>,
    pub connects: Vec<Duration>,
    /// Connections that took over [`STALL`]: a SYN retransmitted after a 1 s timeout.
    pub stalls: Vec<usize>,
    pub gbps: Vec<f64>,
    /// Records the reader made per connection opened.
    pub records_per_conn: Vec<f64>,
    /// CPU time of the reader thread per record it made.
    pub reader_cpu_per_record: Vec<Duration>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct FlowsResult {
    pub conf: FlowsConf,
    pub modes: Vec<(FlowLogs, ModeMeasure)>,
}

pub fn run(lab: &Lab, quick: bool) -> Result<FlowsResult> {
    let conf = match quick {
        true => FlowsConf { rounds: 2, iperf_secs: 1, connect_span: Duration::from_millis(700) },
        // Many short rounds: on a shared machine, noise then hits every mode alike.
        false => FlowsConf { rounds: 12, iperf_secs: 1, connect_span: Duration::from_secs(1) },
    };
    let bed = Bed::new(lab)?;
    let (world, pods) = build_world(POLICIES);
    let store = Arc::new(FlowStore::default());
    let view = SharedView::default();
    let stop = Arc::new(AtomicBool::new(false));
    let state = lab.dir().join("flows");
    std::fs::create_dir_all(&state)?;
    let started =
        bed.node.run(|| agent::flows::spawn(view.clone(), store.clone(), state.clone(), stop.clone()));
    started?.context("start the flow log reader in the node namespace")?;
    let mut modes: Vec<(FlowLogs, ModeMeasure)> =
        MODES.iter().map(|m| (*m, ModeMeasure::default())).collect();
    let mut outcome = Ok(());
    'rounds: for r in 0..conf.rounds {
        for k in 0..MODES.len() {
            if let Err(e) = signals::check() {
                outcome = Err(e);
                break 'rounds;
            }
            let (mode, m) = &mut modes[(r + k) % MODES.len()];
            let (rs, sites) = compile_logged(&world, &pods, *mode);
            view.publish(agent::flows::FlowView::new("bench-node", world.clone(), sites));
            if let Err(e) = round(&bed, &conf, &rs, &store, m) {
                m.error = Some(format!("{e:#}"));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    outcome?;
    eprintln!("  flows: {} rounds done", conf.rounds);
    Ok(FlowsResult { conf, modes })
}

/// Apply, measure, remove.
fn round(
    bed: &Bed,
    conf: &FlowsConf,
    rs: &policy::Ruleset,
    store: &FlowStore,
    m: &mut ModeMeasure,
) -> Result<()> {
    let mut conn = fw::nft::Conn::in_netns(&bed.node)?;
    conn.apply(&apply_batch(rs))?;
    let outcome = measure(bed, conf, store, m);
    conn.apply(&delete_batch())?;
    outcome
}

fn measure(bed: &Bed, conf: &FlowsConf, store: &FlowStore, m: &mut ModeMeasure) -> Result<()> {
    let before = store.next_seq();
    let cpu_before = reader_cpu();
    let started = Instant::now();
    let times = bed.connections(conf.connect_span)?;
    let stalled: Vec<&Duration> = times.iter().filter(|t| **t > STALL).collect();
    let busy = started.elapsed().saturating_sub(stalled.iter().copied().sum());
    m.rates.push((times.len() - stalled.len()) as f64 / busy.as_secs_f64());
    m.stalls.push(stalled.len());
    m.connects.extend(crate::stats::median_duration(&times));
    // The reader flushes every 100 ms or 50 packets.
    std::thread::sleep(Duration::from_millis(300));
    // Counted by sequence numbers: a query answers at most `MAX_ANSWER` records.
    let made = store.next_seq().saturating_sub(before) as usize;
    m.records_per_conn.push(made as f64 / times.len().max(1) as f64);
    if let (Some(a), Some(b)) = (cpu_before, reader_cpu())
        && made > 0
    {
        m.reader_cpu_per_record.push(b.saturating_sub(a) / made as u32);
    }
    m.gbps.push(bed.throughput(conf.iperf_secs)?);
    Ok(())
}

/// CPU time of this process's `twilld-flows` thread (the reader), in nanoseconds from
/// /proc/self/task/*/schedstat (utime and stime in `stat` count 10 ms ticks, too coarse for
/// a round's few milliseconds).
fn reader_cpu() -> Option<Duration> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "twilld-flows" {
            continue;
        }
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        let on_cpu: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        return Some(Duration::from_nanos(on_cpu));
    }
    None
}
