//! Datapath: pod-to-pod TCP throughput (iperf3, 1 and 4 streams) and ping RTT between two
//! pods on one bridge, for each implementation's minimal chain, against the floor of a bare
//! veth pair between two namespaces. The three paths take turns, the first rotating every
//! round. Traffic never leaves namespaces the bench created.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::NetNs;
use serde_json::Value;

use crate::chains::Chain;
use crate::lab::Lab;
use crate::node::Node;
use crate::provision::{Impl, Provision};
use crate::signals;

/// What carries the packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Floor,
    Impl(Impl),
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Floor => "veth floor",
            Target::Impl(imp) => imp.label(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DatapathConf {
    pub secs: u32,
    pub rounds: usize,
    pub ping_count: usize,
}

/// One round on one path.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub gbps_1: f64,
    pub gbps_4: f64,
    /// Median RTT of the round's pings.
    pub rtt: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct PathResult {
    pub samples: Vec<Sample>,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct DatapathResult {
    pub conf: DatapathConf,
    pub paths: BTreeMap<Target, PathResult>,
}

/// A client namespace and the iperf3 server (in the other namespace) it talks to; the
/// server is killed, by its pid, on drop.
struct Pair {
    client_ns: NetNs,
    server_ip: IpAddr,
    server: Child,
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

pub fn run(lab: &Lab, prov: &Provision, conf: DatapathConf) -> Result<DatapathResult> {
    let mut paths: BTreeMap<Target, PathResult> = BTreeMap::new();
    let nodes = [Node::new(lab, prov, "dp", Impl::Twill)?, Node::new(lab, prov, "dp", Impl::Reference)?];
    let mut pairs: Vec<(Target, Pair)> = Vec::new();
    for node in &nodes {
        match pod_pair(node)? {
            Ok(pair) => pairs.push((Target::Impl(node.imp), pair)),
            Err(e) => paths.entry(Target::Impl(node.imp)).or_default().error = Some(e),
        }
    }
    pairs.push((Target::Floor, floor_pair(lab)?));
    for r in 0..conf.rounds {
        let n = pairs.len();
        for k in 0..n {
            signals::check()?;
            let (target, pair) = &pairs[(k + r) % n];
            let sample = measure(pair, conf).with_context(|| format!("datapath on {}", target.label()));
            match sample {
                Ok(s) => paths.entry(*target).or_default().samples.push(s),
                Err(e) => paths.entry(*target).or_default().error = Some(format!("{e:#}")),
            }
        }
        eprintln!("  datapath: round {}/{}", r + 1, conf.rounds);
    }
    Ok(DatapathResult { conf, paths })
}

/// Two pods attached through the node's minimal chain, their addresses from the results.
fn pod_pair(node: &Node) -> Result<Result<Pair, String>> {
    let chain = Chain::Minimal;
    let mut ends = Vec::new();
    for id in ["srv", "cli"] {
        let pod = node.pod(id)?;
        let rt = node.rt(&pod, chain, 0);
        let result = match node.runtime().add(node.list(chain), &rt) {
            Ok(r) => r,
            Err(e) => return Ok(Err(format!("ADD {id}: {e}"))),
        };
        let Some(ip) = result.ips.first().map(|c| c.address.addr()) else {
            return Ok(Err(format!("ADD {id}: result has no address")));
        };
        ends.push((NetNs::open(netns::named_path(&pod.ns_name))?, ip));
    }
    let (client_ns, _) = ends.pop().context("client pod")?;
    let (server_ns, server_ip) = ends.pop().context("server pod")?;
    Ok(Ok(Pair { server: start_server(&server_ns, server_ip)?, client_ns, server_ip }))
}

/// The floor: `veth` between two fresh namespaces, 10.99.0.1/24 and 10.99.0.2/24.
fn floor_pair(lab: &Lab) -> Result<Pair> {
    let (_, server_ns) = lab.create_ns("dp-floor-srv")?;
    let (_, client_ns) = lab.create_ns("dp-floor-cli")?;
    let srv = nl::Handle::in_netns(&server_ns)?;
    srv.veth_add("eth0", "eth0", Some(&client_ns), None, None, None)?;
    let cli = nl::Handle::in_netns(&client_ns)?;
    for (h, addr) in [(&srv, "10.99.0.1/24"), (&cli, "10.99.0.2/24")] {
        let link = h.link_get("eth0")?.context("floor veth end")?;
        h.addr_add(link.index, addr.parse()?, true)?;
        h.link_set_up(link.index, true)?;
    }
    let server_ip: IpAddr = "10.99.0.1".parse()?;
    Ok(Pair { server: start_server(&server_ns, server_ip)?, client_ns, server_ip })
}

fn start_server(ns: &NetNs, ip: IpAddr) -> Result<Child> {
    let mut cmd = Command::new("iperf3");
    cmd.args(["-s", "-B", &ip.to_string()])
        .args(affinity("1"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ns.spawn_inside(&mut cmd);
    cmd.spawn().context("start iperf3 -s (package iperf3)")
}

/// `-A CPU` when there are two CPUs or more: server on CPU 1, client on CPU 0, so rounds differ
/// less by where the scheduler happened to put them.
fn affinity(cpu: &str) -> Vec<String> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cpus >= 2 { vec!["-A".into(), cpu.into()] } else { Vec::new() }
}

fn measure(pair: &Pair, conf: DatapathConf) -> Result<Sample> {
    Ok(Sample {
        gbps_1: iperf(pair, 1, conf.secs)?,
        gbps_4: iperf(pair, 4, conf.secs)?,
        rtt: ping(pair, conf.ping_count)?,
    })
}

/// Gbit/s received over `secs` seconds with `streams` parallel TCP streams; retries while
/// the server is still starting.
fn iperf(pair: &Pair, streams: u32, secs: u32) -> Result<f64> {
    let ip = pair.server_ip.to_string();
    for _ in 0..50 {
        let mut cmd = Command::new("iperf3");
        cmd.args(["-c", &ip, "-J", "-t", &secs.to_string(), "-P", &streams.to_string()]).args(affinity("0"));
        pair.client_ns.spawn_inside(&mut cmd);
        let out = cmd.output().context("run iperf3 -c")?;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(bps) = report.pointer("/end/sum_received/bits_per_second").and_then(Value::as_f64) {
            return Ok(bps / 1e9);
        }
        let error = report.get("error").and_then(Value::as_str).unwrap_or("no JSON report").to_string();
        if !error.contains("connect") && !error.contains("busy") {
            bail!("iperf3 -c {ip}: {error}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("iperf3 server at {ip} never answered")
}

/// The median RTT of `count` pings 10 ms apart, after a few to resolve the neighbour.
fn ping(pair: &Pair, count: usize) -> Result<Duration> {
    let ip = pair.server_ip.to_string();
    ping_times(pair, &ip, 3)?;
    let times = ping_times(pair, &ip, count)?;
    crate::stats::median(&times).map(|ms| Duration::from_secs_f64(ms / 1e3)).context("no ping replies")
}

fn ping_times(pair: &Pair, ip: &str, count: usize) -> Result<Vec<f64>> {
    let mut cmd = Command::new("ping");
    cmd.args(["-n", "-c", &count.to_string(), "-i", "0.01", "-W", "1", ip]);
    pair.client_ns.spawn_inside(&mut cmd);
    let out = cmd.output().context("run ping")?;
    let times = parse_ping(&String::from_utf8_lossy(&out.stdout));
    if times.is_empty() {
        bail!("ping {ip}: no replies ({})", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(times)
}

/// The `time=` values (ms) of ping's reply lines.
pub fn parse_ping(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next())
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_lines_are_parsed() {
        let out = "PING 10.0.0.1 (10.0.0.1) 56(84) bytes of data.\n\
                   64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms\n\
                   64 bytes from 10.0.0.1: icmp_seq=2 ttl=64 time=0.051 ms\n\n\
                   rtt min/avg/max/mdev = 0.045/0.048/0.051/0.003 ms\n";
        assert_eq!(parse_ping(out), vec![0.045, 0.051]);
    }
}
