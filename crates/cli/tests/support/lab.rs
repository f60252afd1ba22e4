//! The lab as its end-to-end suites drive it: `twill lab` under a prefix of its own
//! (`TWILL_LAB_PREFIX`, namespaces `tlab<tag><pid>-*`), taken down on drop, and the
//! `twill cluster` command pointed at the lab's datastore from inside a node.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::require_privileges;

pub const TWILL: &str = env!("CARGO_BIN_EXE_twill");

#[path = "twilld.rs"]
mod twilld;
use twilld::ensure_twilld;

pub struct Lab {
    pub prefix: String,
    pub down: bool,
    /// `--datastore ... --etcd-*` for `twill cluster`, read from `lab status` once.
    conn: std::sync::OnceLock<Vec<String>>,
}

impl Lab {
    /// A handle on the lab called `prefix` (`down`: already taken down, nothing to clean).
    pub fn named(prefix: String, down: bool) -> Lab {
        Lab { prefix, down, conn: std::sync::OnceLock::new() }
    }

    /// `twill cluster ARGS` run inside `node` with the lab's datastore and TLS settings, as an
    /// operator on that host would.
    pub fn cluster(&self, node: &str, args: &[&str]) -> Output {
        let conn = self.conn.get_or_init(|| {
            let s = self.status();
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            let mut conn = vec!["--datastore".to_string(), text("datastore")];
            for (flag, key) in
                [("--etcd-cacert", "etcd_cacert"), ("--etcd-cert", "etcd_cert"), ("--etcd-key", "etcd_key")]
            {
                if !text(key).is_empty() {
                    conn.extend([flag.to_string(), text(key)]);
                }
            }
            conn
        });
        let mut all: Vec<String> = ["exec", node, "--", TWILL, "cluster"].map(String::from).to_vec();
        all.extend(conn.iter().cloned());
        all.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.run(&refs)
    }

    /// `cluster` that must succeed; its stdout.
    pub fn cluster_ok(&self, node: &str, args: &[&str]) -> String {
        let out = self.cluster(node, args);
        assert!(
            out.status.success(),
            "twill cluster {args:?} on {node} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `twill lab up ARGS` under a prefix of its own; panics with the output when it fails.
    pub fn up(tag: &str, args: &[&str]) -> Lab {
        require_privileges();
        ensure_twilld(TWILL);
        let lab = Lab::named(format!("tlab{tag}{}", std::process::id()), false);
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        lab.ok(&all);
        lab
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(TWILL);
        cmd.arg("lab").args(args).env("TWILL_LAB_PREFIX", &self.prefix);
        cmd
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "twill lab {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["status", "--json"])).unwrap()
    }

    /// `N/M connected` of `twill lab matrix`.
    pub fn matrix(&self, args: &[&str]) -> (usize, usize, String) {
        let mut all = vec!["matrix"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        let summary = text.lines().find(|l| l.ends_with(" connected")).unwrap_or_else(|| panic!("{text}"));
        let (n, m) = summary.trim_end_matches(" connected").split_once('/').unwrap();
        (n.parse().unwrap(), m.parse().unwrap(), text)
    }

    /// [`matrix`](Lab::matrix) where every pair must connect: measured once more when it is
    /// not whole (each cell is one 1 s probe); the second measurement is returned.
    pub fn matrix_all(&self, args: &[&str]) -> (usize, usize, String) {
        let first = self.matrix(args);
        if first.0 == first.1 {
            return first;
        }
        eprintln!("matrix {args:?} not whole, measuring again:\n{}", first.2);
        self.matrix(args)
    }

    /// The client address the server at `to` saw, when the probe connects.
    pub fn probe(&self, from: &str, to: &str, options: &[&str]) -> Option<String> {
        let mut all = vec!["probe", from, to];
        all.extend_from_slice(options);
        let out = self.run(&all);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        match out.status.code() {
            Some(0) => {
                let answer = text.lines().find_map(|l| l.trim().strip_prefix("answer: ")).unwrap();
                let client = answer.split_whitespace().find_map(|w| w.strip_prefix("client=")).unwrap();
                let addr: std::net::SocketAddr = client.parse().unwrap();
                Some(addr.ip().to_string())
            }
            Some(1) => None,
            other => {
                panic!("probe {from} {to}: exit {other:?}: {text}{}", String::from_utf8_lossy(&out.stderr))
            }
        }
    }

    /// [`probe`](Lab::probe) for a pair that must connect: up to three tries, so that one
    /// attempt a busy machine drops (a probe waits 1 s) is no failure; a pair that does not
    /// connect fails them all. Tests of the very first packet use `probe`.
    pub fn reach(&self, from: &str, to: &str, options: &[&str]) -> Option<String> {
        (0..3).find_map(|_| self.probe(from, to, options))
    }

    pub fn pod_ip(&self, pod: &str) -> String {
        let status = self.status();
        let p = status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == pod).unwrap().clone();
        p["ips"][0].as_str().unwrap().to_string()
    }

    pub fn netns_names(&self) -> Vec<String> {
        let owned = format!("{}-", self.prefix);
        std::fs::read_dir("/run/netns")
            .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_else(|_| Vec::new())
            .into_iter()
            .filter(|n: &String| n.starts_with(&owned))
            .collect()
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/twill-lab-{}", self.prefix))
    }

    pub fn down(&mut self) -> String {
        self.down = true;
        self.ok(&["down"])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let out = self.run(&["down"]);
            eprintln!(
                "cleanup: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pids of every process the lab recorded.
pub fn lab_pids(status: &Value) -> Vec<i32> {
    let nodes = status["nodes"].as_array().unwrap().iter().map(|n| &n["agent_pid"]);
    let pods = status["pods"].as_array().unwrap().iter().map(|p| &p["server_pid"]);
    let etcd = status["etcd"].as_array().into_iter().flatten().map(|m| &m["pid"]);
    let outside = std::iter::once(&status["outside_server_pid"]);
    nodes.chain(pods).chain(etcd).chain(outside).filter_map(Value::as_i64).map(|p| p as i32).collect()
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// Like [`wait_for`], polling every 100 ms, and says how long it took.
pub fn wait_timed(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// A node's field in `lab status --json`.
pub fn node_field(status: &Value, node: &str, field: &str) -> Value {
    status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node).unwrap()[field].clone()
}

impl Lab {
    /// `ip -j ARGS` inside a lab place, parsed.
    pub fn ip_json(&self, place: &str, args: &[&str]) -> Value {
        let mut all = vec!["exec", place, "--", "ip", "-j"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        if out.trim().is_empty() { Value::Array(Vec::new()) } else { serde_json::from_str(&out).unwrap() }
    }
}
