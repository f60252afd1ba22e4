//! Throughput between two test namespaces with iperf3, for the shaping tests: a one-off
//! server bound to one address, a short client run, the received rate in bits/s. TCP shows
//! what a pod gets; UDP offered above the limit shows the bucket itself and keeps its rate
//! when the machine is busy (one TCP retransmission timeout costs a 1 s run a fifth).

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::TestNs;

/// Runs iperf3 over TCP for `secs` seconds between `client` and a one-off server on
/// `server_ip` in `server`; returns the received rate in bits/s. `reverse` makes the server
/// send.
pub fn iperf(server: &TestNs, server_ip: &str, client: &TestNs, reverse: bool, secs: u32) -> f64 {
    measure(server, server_ip, client, reverse, &["-t", &secs.to_string()])
}

/// Like [`iperf`], over UDP offered at `offered` bits/s.
pub fn iperf_udp(
    server: &TestNs,
    server_ip: &str,
    client: &TestNs,
    reverse: bool,
    secs: u32,
    offered: u64,
) -> f64 {
    measure(server, server_ip, client, reverse, &["-t", &secs.to_string(), "-u", "-b", &offered.to_string()])
}

fn measure(server: &TestNs, server_ip: &str, client: &TestNs, reverse: bool, extra: &[&str]) -> f64 {
    let mut args = vec!["iperf3", "-c", server_ip, "-p", "5201", "-J"];
    args.extend_from_slice(extra);
    if reverse {
        args.push("-R");
    }
    // On a busy machine a run can fail (the server not listening yet, a control connection
    // cut short); a one-off server is gone after a failed run, so each try starts its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut srv: Child = Command::new("ip")
            .args(["netns", "exec", server.name(), "iperf3", "-s", "-1", "-B", server_ip, "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3 server");
        wait_listening(server, deadline);
        let out = client.exec(&args);
        let _ = srv.kill();
        let _ = srv.wait();
        // iperf3 3.12 exits 0 with {"error": ...} when the run failed.
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(rate) = report["end"]["sum_received"]["bits_per_second"].as_f64()
            && out.status.success()
            && report.get("error").is_none()
        {
            return rate;
        }
        assert!(Instant::now() < deadline, "iperf3 gave no received rate within 20 s; last report: {report}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Until something listens on TCP port 5201 in `ns` (or `deadline`).
fn wait_listening(ns: &TestNs, deadline: Instant) {
    while Instant::now() < deadline {
        let out = ns.exec(&["ss", "-Hltn", "sport", "=", ":5201"]);
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The rate `measure` returns is within 15% of `limit` (both bits/s). A run outside is
/// measured once more: one run can be cut short by the machine (a stall, a retransmission
/// timeout), a shaper that is wrong misses both.
pub fn assert_near(what: &str, limit: u64, mut measure: impl FnMut() -> f64) {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let measured = measure();
        eprintln!("{what}: {:.2} Mbit/s measured, limit {:.2} Mbit/s", measured / 1e6, limit as f64 / 1e6);
        runs.push(measured);
        if (0.85..=1.15).contains(&(measured / limit as f64)) {
            return;
        }
    }
    panic!("{what}: measured {runs:?} bit/s, neither within 15% of {limit}");
}
