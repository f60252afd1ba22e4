//! The failure suites' cluster: a 3-node lab (vxlan or host-gw) on a TLS etcd with a short lease TTL,
//! four pods under a NetworkPolicy and a [`Prober`] running between them from the start, plus
//! what the scenarios read from the nodes (routes, FDB and neighbour entries, node and pod
//! records) and the report they print.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::lab_support::{Lab, wait_for};
use super::prober::{Expect, Pair, Prober, Tally};

/// The agents' lease TTL in these suites: short, so that expiry happens within a test.
pub const TTL: Duration = Duration::from_secs(6);
/// The lab's `--resync-seconds`.
pub const RESYNC: Duration = Duration::from_secs(2);

/// Every pod of namespace x is isolated; only pods labelled member=yes may reach them.
const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: members-only, namespace: x}
spec:
  podSelector: {}
  ingress: [{from: [{podSelector: {matchLabels: {member: \"yes\"}}}]}]
";

/// The pods: (name, node, member of the policy's allowed group).
pub const PODS: [(&str, u8, bool); 4] =
    [("a", 1, true), ("b", 2, true), ("c", 3, true), ("intruder", 1, false)];

/// The probed pairs: client, server.
const PAIRS: [(&str, &str); 6] =
    [("a", "b"), ("b", "c"), ("c", "a"), ("b", "a"), ("intruder", "b"), ("intruder", "c")];

pub struct Cluster {
    pub lab: Lab,
    pub prober: Prober,
    pub report: Report,
}

/// Builds the lab (`extra`: more `lab up` arguments), its pods and policy, starts the prober
/// and checks a quiet baseline: before any failure every allowed datagram is answered and
/// every other one dropped, or the suite could not tell a failure's losses from the lab's.
pub fn cluster(tag: &str, suite: &str, backend: &str, extra: &[&str]) -> Cluster {
    let ttl = TTL.as_secs().to_string();
    let mut args = vec!["--nodes", "3", "--backend", backend, "--datastore", "etcd", "--lease-ttl", &ttl];
    args.extend_from_slice(extra);
    let lab = Lab::up(tag, &args);
    for (name, node, member) in PODS {
        let labels = if member { "member=yes" } else { "member=no" };
        lab.ok(&["pod", "add", &format!("x/{name}"), "--node", &node.to_string(), "--labels", labels]);
    }
    let file = lab.state_dir().join("members-only.yaml");
    std::fs::write(&file, POLICY).unwrap();
    lab.ok(&["apply", "-f", &file.display().to_string()]);
    let status = lab.status();
    let pod = |name: &str| {
        let key = format!("x/{name}");
        status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == key.as_str()).unwrap().clone()
    };
    let pairs = PAIRS
        .iter()
        .map(|(from, to)| Pair {
            name: format!("x/{from} -> x/{to}"),
            netns: format!("/run/netns/{}", pod(from)["netns"].as_str().unwrap()),
            to: SocketAddr::new(pod(to)["ips"][0].as_str().unwrap().parse().unwrap(), 80),
            server: format!("x/{to}"),
            expect: if PODS.iter().any(|p| p.0 == *from && p.2) { Expect::Reach } else { Expect::Blocked },
        })
        .collect();
    let prober = Prober::start(pairs);
    let c = Cluster { lab, prober, report: Report::new(suite) };
    // A datagram of the first moments may meet a lab still settling (first packets between
    // freshly made pods); the baseline is the first of three 3 s windows that is clean.
    for attempt in 1..=BASELINE_WINDOWS {
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let base = c.prober.tally(start, Instant::now());
        if base.iter().all(|t| t.wrong() == 0 && t.sent > 0) {
            break;
        }
        assert!(
            attempt < BASELINE_WINDOWS,
            "the lab does not carry (or block) traffic as it should before any failure, in \
             {BASELINE_WINDOWS} windows of 3 s; the last: {base:#?}"
        );
        eprintln!("baseline window {attempt} not clean, measuring another: {base:#?}");
    }
    c
}

/// Windows of quiet probing the baseline may take to be clean.
const BASELINE_WINDOWS: usize = 3;

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Cluster {
    /// `twill cluster get KIND -o json` from `node`, as JSON (None when it failed: the
    /// datastore is away).
    pub fn get(&self, node: &str, kind: &str) -> Option<Vec<Value>> {
        let out = self.lab.cluster(node, &["get", kind, "-o", "json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice::<Value>(&out.stdout).ok()?.as_array().cloned()
    }

    /// Waits until `nodes` all have a node record published at or after `since` (Unix
    /// seconds) saying `ready`, and every live pod a record; returns how long that took.
    pub fn converge(&self, nodes: &[&str], pods: &[&str], since: u64, limit: Duration) -> Duration {
        let start = Instant::now();
        wait_for("the cluster to converge", limit, || {
            let Some(records) = self.get("node-1", "nodes") else { return false };
            let fresh = |n: &&str| {
                records.iter().any(|r| {
                    r["name"] == *n
                        && r["health"] == "ready"
                        && r["heartbeat"].as_u64().is_some_and(|h| h >= since)
                })
            };
            let Some(published) = self.get("node-1", "pods") else { return false };
            let has_pod = |p: &&str| published.iter().any(|r| r["namespace"] == "x" && r["name"] == *p);
            nodes.iter().all(fresh) && pods.iter().all(has_pod)
        });
        start.elapsed()
    }

    /// Lines of the agents' logs (all nodes) that contain `text`.
    pub fn log_count(&self, text: &str) -> usize {
        (1..=3)
            .map(|i| self.lab.state_dir().join(format!("nodes/node-{i}/twilld.log")))
            .map(|log| std::fs::read_to_string(log).unwrap_or_default())
            .map(|t| t.lines().filter(|l| l.contains(text)).count())
            .sum()
    }

    /// No agent withdrew a peer in a suite where no node died (whether a datagram happened to
    /// cross the gap or not), and how often a vanished peer was held.
    pub fn report_flaps(&mut self) {
        let left = self.log_count("peer left");
        let held = self.log_count("keeping its routes");
        eprintln!("RESULT agents' logs: {left} peer withdrawals, {held} vanished peers held");
        self.report.note("peers withdrawn", left);
        self.report.note("vanished peers held", held);
        if left > 0 {
            self.report
                .failures
                .push(format!("agents withdrew a live peer {left} times (\"peer left\" in twilld.log)"));
        }
    }

    /// Pid of `node-I`'s twilld.
    pub fn agent_pid(&self, node: u8) -> i32 {
        let s = self.lab.status();
        let n = s["nodes"].as_array().unwrap().iter().find(|n| n["name"] == format!("node-{node}")).unwrap();
        i32::try_from(n["agent_pid"].as_i64().unwrap()).unwrap()
    }
}

/// What a node's kernel holds for reaching `subnet` at `node_ip` (vxlan: route, FDB entry,
/// neighbour of the VTEP); empty once withdrawn.
pub fn entries_towards(netns: &str, subnet: &str, node_ip: &str) -> Vec<String> {
    let vtep = subnet.split('/').next().unwrap_or_default();
    let ip = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let mut found = Vec::new();
    found.extend(
        ip(&["ip", "-n", netns, "route", "show", "proto", "116"])
            .into_iter()
            .filter(|l| l.starts_with(subnet)),
    );
    found.extend(
        ip(&["bridge", "-n", netns, "fdb", "show", "dev", "twill.vxlan"])
            .into_iter()
            .filter(|l| l.contains(&format!("dst {node_ip} "))),
    );
    found.extend(
        ip(&["ip", "-n", netns, "neigh", "show", "dev", "twill.vxlan"])
            .into_iter()
            .filter(|l| l.starts_with(&format!("{vtep} "))),
    );
    found
}

/// The suite's numbers: printed as a table at the end, and appended as JSON lines to
/// `$TWILL_LAB_FAILURES_REPORT` when set (bench/lab-failures.sh renders them).
pub struct Report {
    suite: String,
    rows: Vec<Value>,
    pub failures: Vec<String>,
}

impl Report {
    fn new(suite: &str) -> Report {
        Report { suite: suite.to_string(), rows: Vec::new(), failures: Vec::new() }
    }

    /// Records a scenario's tallies and timings, and what in them broke a promise.
    pub fn scenario(&mut self, name: &str, tallies: &[Tally], timings: &[(&str, Duration)]) {
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0).round() as u64;
        for t in tallies {
            let expect = if t.expect == Expect::Reach { "reach" } else { "blocked" };
            let span = match t.expect {
                Expect::Reach => format!(", lost from first to last: {} ms", ms(t.loss_span)),
                Expect::Blocked => String::new(),
            };
            eprintln!(
                "RESULT {name:<28} {:<22} {expect:<7} sent {:>4} answered {:>4} wrong {:>3}{span}",
                t.pair,
                t.sent,
                t.answered,
                t.wrong()
            );
            if t.wrong() > 0 || t.sent == 0 {
                self.failures.push(format!(
                    "{name}: {}: {} of {} datagrams wrong ({expect})",
                    t.pair,
                    t.wrong(),
                    t.sent
                ));
            }
        }
        let times: BTreeMap<&str, u64> = timings.iter().map(|(k, d)| (*k, ms(*d))).collect();
        for (k, v) in &times {
            eprintln!("RESULT {name:<28} {k}: {v} ms");
        }
        let pairs: Vec<Value> = tallies
            .iter()
            .map(|t| json!({"pair": t.pair, "expect": format!("{:?}", t.expect), "sent": t.sent, "answered": t.answered, "wrong": t.wrong(), "loss_span_ms": ms(t.loss_span)}))
            .collect();
        self.rows.push(json!({"suite": self.suite, "scenario": name, "pairs": pairs, "ms": times}));
    }

    /// A count the suite found (in the agents' logs).
    pub fn note(&mut self, what: &str, n: usize) {
        self.rows.push(json!({"suite": self.suite, "note": what, "count": n}));
    }

    /// Writes the JSON lines, then fails the test with every broken promise.
    pub fn finish(&self) {
        if let Some(path) = std::env::var_os("TWILL_LAB_FAILURES_REPORT") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            for r in &self.rows {
                writeln!(f, "{r}").unwrap();
            }
        }
        assert!(self.failures.is_empty(), "promises broken:\n{}", self.failures.join("\n"));
    }
}
