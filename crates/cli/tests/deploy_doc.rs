//! docs/deploy.md, followed literally: every shell block of the page runs, in order, on the
//! "hosts" it names (network namespaces on a bridge, each with a private mount namespace whose
//! /etc, /var, /opt, /usr/local and /run writes stay in the test's temp dir; support/hosts.rs),
//! with a stand-in `systemctl` (tests/deploy/systemctl) that starts the units the blocks write
//! or Debian installs. Blocks the test cannot run say so (`try: skip REASON`). Between blocks
//! the test checks what the page promises — etcd answering over TLS with client certificates,
//! nodes ready with subnets, a podman and a ctr container published with addresses from their
//! host's subnet, NetworkPolicy enforced and lifted, pods gone after their removal — and
//! retries a check block until it holds or a deadline passes. If the page changes, this test
//! runs the new commands: the page cannot rot.

#[path = "support/hosts.rs"]
mod hosts;
#[path = "support/runtimes.rs"]
mod runtimes;
#[path = "support/twilld.rs"]
mod twilld;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use hosts::{Block, Host, Hosts, blocks};
use runtimes::{IMAGE, build_image, text};
use serde_json::Value;

const TWILL: &str = env!("CARGO_BIN_EXE_twill");
const HOSTS: [&str; 2] = ["node-1", "node-2"];
/// The longest a check block is retried (a node joining, a policy taking hold).
const DEADLINE: Duration = Duration::from_secs(60);

/// Sandbox quirks of the test machine, not of a real host (../shared/MACHINE-NOTES.md): no
/// CAP_SYS_RESOURCE for podman's default rlimits, crun refusing the hybrid cgroup layout, no
/// systemd for cgroups or the event log. A drop-in, so the page's containers.conf stays as is.
const PODMAN_MACHINE_QUIRKS: &str = r#"mkdir -p /etc/containers/containers.conf.d
cat > /etc/containers/containers.conf.d/99-test-machine.conf <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF"#;

struct Trial {
    hosts: Hosts,
    pki: PathBuf,
    image: PathBuf,
}

impl Trial {
    fn env(&self, host: &Host) -> Vec<(&'static str, String)> {
        let fake = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deploy");
        vec![
            ("NODE", host.name.clone()),
            ("NODE_IP", host.ip.clone()),
            ("IFACE", "eth0".into()),
            ("IMAGE", IMAGE.into()),
            (
                "PATH",
                format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", fake.display()),
            ),
            ("FAKE_SYSTEMD_STATE", host.root.join("systemd").display().to_string()),
            ("HOME", "/root".into()),
        ]
    }

    fn cwd(&self, block: &Block) -> PathBuf {
        match block.cwd.as_deref() {
            None => PathBuf::from("/"),
            Some("pki") => self.pki.clone(),
            Some("bin") => Path::new(TWILL).parent().unwrap().to_path_buf(),
            Some("deploy") => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy"),
            Some(other) => panic!("line {}: unknown cwd={other}", block.line),
        }
    }

    fn targets(&self, block: &Block) -> Vec<&Host> {
        match block.place.as_str() {
            "nodes" => self.hosts.hosts.iter().collect(),
            "admin" | "etcd" => vec![self.hosts.get("node-1")],
            name if HOSTS.contains(&name) => vec![self.hosts.get(name)],
            other => panic!("line {}: unknown place {other:?}", block.line),
        }
    }

    fn sh(&self, host: &Host, script: &str, cwd: &Path) -> Output {
        host.bash(script, cwd, &self.env(host))
    }

    /// The page's block on each of its hosts; panics with the output when it fails.
    fn run(&self, block: &Block) -> Vec<Output> {
        let check = check_of(block.id.as_deref());
        self.targets(block)
            .into_iter()
            .map(|host| {
                let started = Instant::now();
                loop {
                    let out = self.sh(host, &block.code, &self.cwd(block));
                    let verdict = check(&out);
                    if out.status.success() && verdict.is_ok() {
                        return out;
                    }
                    if started.elapsed() > DEADLINE {
                        let why = verdict.err().unwrap_or_else(|| format!("exit {}", out.status));
                        self.fail(block, host, &out, &why);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
            .collect()
    }

    fn fail(&self, block: &Block, host: &Host, out: &Output, why: &str) -> ! {
        let logs: Vec<String> = std::fs::read_dir(host.root.join("systemd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> =
                    t.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
                format!("--- {}:\n{}", e.path().display(), tail.join("\n"))
            })
            .collect();
        panic!(
            "docs/deploy.md line {} on {}: {why}\n{}\n--- output:\n{}\n{}",
            block.line,
            host.name,
            block.code,
            text(out),
            logs.join("\n")
        );
    }

    /// What the test does on a host before the page's block `id` runs.
    fn before(&self, id: Option<&str>) {
        let image = self.image.display().to_string();
        let (host, script) = match id {
            Some("web-1") => ("node-1", format!("{PODMAN_MACHINE_QUIRKS}\npodman load -i {image}")),
            Some("web-2") => (
                "node-2",
                format!(
                    "for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done\nctr image import {image}"
                ),
            ),
            _ => return,
        };
        let h = self.hosts.get(host);
        let out = self.sh(h, &script, Path::new("/"));
        assert!(out.status.success(), "preparing {host} for block {id:?}: {}", text(&out));
    }

    /// `twill cluster ARGS -o json` on node-1 with the operator's certificate.
    fn cluster_json(&self, args: &str) -> Value {
        let script = format!("set -a; . ./admin.env; set +a\ntwill cluster {args} -o json");
        let out = self.sh(self.hosts.get("node-1"), &script, &self.pki);
        assert!(out.status.success(), "twill cluster {args}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Containers run in mount namespaces of their own, out of reach of the hosts' teardown: the
/// runtimes remove whatever a failed run left, before the hosts' processes are ended.
const REMOVE_CONTAINERS: &str = "podman rm -a -f -t 0 >/dev/null 2>&1 || true
for t in $(ctr task ls -q 2>/dev/null); do ctr task kill -s SIGKILL \"$t\" || true; done
sleep 1
for t in $(ctr task ls -q 2>/dev/null); do ctr task rm -f \"$t\" || true; done";

impl Drop for Trial {
    fn drop(&mut self) {
        for host in &self.hosts.hosts {
            let _ = self.sh(host, REMOVE_CONTAINERS, Path::new("/"));
        }
        // The page's ctr container runs in containerd's `default` namespace.
        runtimes::remove_cgroups("default", &["web-2"]);
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the output of check block `id` must show; Err says what is missing.
fn check_of(id: Option<&str>) -> fn(&Output) -> Result<(), String> {
    fn has(out: &Output, words: &[&str]) -> Result<(), String> {
        let text = stdout(out);
        match words.iter().find(|w| !text.contains(*w)) {
            Some(w) => Err(format!("{w:?} not in the output yet")),
            None => Ok(()),
        }
    }
    match id {
        Some("nodes-ready") => |o| {
            let ready = stdout(o).lines().filter(|l| l.contains("10.244.") && l.contains(" ready ")).count();
            if ready == HOSTS.len() { Ok(()) } else { Err(format!("{ready} node(s) ready")) }
        },
        Some("pods") => |o| has(o, &["web-1", "default-web-2"]),
        Some("denied") => |o| has(o, &["no answer from web-2", "web-2-from-granted"]),
        Some("granted") | Some("open") => |o| has(o, &["hello-from-web-2"]),
        Some("pods-gone") => |o| match stdout(o).contains("web-") {
            true => Err("a web pod is still listed".into()),
            false => Ok(()),
        },
        _ => |_| Ok(()),
    }
}

/// Both containers published from their own host, with an address of that host's subnet.
fn pods_in_their_subnets(trial: &Trial) {
    let nodes = trial.cluster_json("get nodes");
    let subnet = |node: &str| -> ipnet::IpNet {
        let n = nodes.as_array().unwrap().iter().find(|n| n["name"] == node).unwrap();
        n["subnet"].as_str().unwrap().parse().unwrap()
    };
    let pods = trial.cluster_json("get pods");
    for (name, node) in [("web-1", "node-1"), ("default-web-2", "node-2")] {
        let p = pods
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {pods}"));
        assert_eq!(p["node"], node, "{name}: {p}");
        let ip: std::net::IpAddr = p["ips"][0].as_str().unwrap().parse().unwrap();
        assert!(subnet(node).contains(&ip), "{name} got {ip}, outside {node}'s {}", subnet(node));
    }
}

#[test]
fn deploy_doc_followed_on_namespaces() {
    testkit::require_privileges();
    twilld::ensure_twilld(TWILL);
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy.md")).unwrap();
    let dir = std::env::temp_dir().join(format!("twill-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    let image = build_image(&dir.join("image"));
    let hosts = Hosts::new("dep", &HOSTS, &dir);
    let trial = Trial { hosts, pki, image };
    let mut ran = 0;
    for block in blocks(&doc) {
        if block.place == "skip" {
            continue;
        }
        trial.before(block.id.as_deref());
        let outs = trial.run(&block);
        ran += outs.len();
        if block.id.as_deref() == Some("pods") {
            pods_in_their_subnets(&trial);
        }
    }
    assert!(ran >= 15, "only {ran} block runs: did the page lose its try: comments?");
    let leftovers: Vec<String> = trial
        .hosts
        .hosts
        .iter()
        .filter_map(|h| {
            let script =
                "ls /var/lib/twilld/pods; podman ps -aq 2>/dev/null || true; ctr c ls -q 2>/dev/null || true";
            let shown = stdout(&trial.sh(h, script, Path::new("/")));
            (!shown.trim().is_empty()).then(|| format!("{}: {shown}", h.name))
        })
        .collect();
    assert!(leftovers.is_empty(), "left after the page's removal steps: {leftovers:?}");
}

/// Removes the trial's directory once everything that used it is gone.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
