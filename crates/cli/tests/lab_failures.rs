//! Datastore and node failures, survived with traffic flowing: a 3-node vxlan lab (host-gw
//! for one freeze) on a TLS etcd (lease TTL 6 s), pods on every node under a NetworkPolicy,
//! and a prober sending a UDP datagram every 50 ms between pods on different nodes the whole
//! time (support/prober.rs).
//!
//! Promises checked, scenario by scenario:
//! - etcd frozen for twice the lease TTL and thawed, etcd killed and restarted with its data,
//!   one member of three lost (each in turn), twilld killed -9 again and again: not one
//!   datagram between running pods is lost, and no datagram the policy drops gets through —
//!   the data plane is not at fault in any of them;
//! - a node powered off (its processes killed by pid, its namespace and its pods' deleted, as a
//!   dead machine): the other nodes withdraw their routes, FDB and neighbour entries to it
//!   within the lease TTL plus a resync, its node record and subnet claims go with its lease,
//!   its pods' records after the agents' grace (two TTLs), the other pods lose nothing, and
//!   `lab down` still removes everything: namespaces, processes, links, nftables tables.
//!
//! Every scenario's numbers are printed (`RESULT ...` lines, `--nocapture`) and, with
//! `TWILL_LAB_FAILURES_REPORT=FILE`, appended to FILE as JSON lines (bench/lab-failures.sh).
//! A test runs all its scenarios before it fails, so one run gives every number.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "support/failures.rs"]
mod failures;
#[path = "support/lab.rs"]
mod lab_support;
#[path = "support/prober.rs"]
mod prober;

use failures::{Cluster, RESYNC, TTL, cluster, entries_towards, unix_now};
use lab_support::{alive, lab_pids, wait_for};

/// One lab of this suite at a time: a lab starting beside another would load the machine in
/// the middle of the other's measurements.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const PODS: [&str; 4] = ["a", "b", "c", "intruder"];
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `body` and then keeps probing for `after`, so that whatever the agents do late (a
/// withdrawal after a hold, a resync) falls inside the scenario's window; returns the window.
fn window(after: Duration, body: impl FnOnce()) -> (Instant, Instant) {
    let start = Instant::now();
    body();
    std::thread::sleep(after);
    (start, Instant::now())
}

/// How long the agents may take to act after the datastore is back: their hold on vanished
/// peers (one TTL of a healthy datastore) and a resync, with room to spare.
fn settle() -> Duration {
    TTL + RESYNC + Duration::from_secs(2)
}

/// etcd frozen (SIGSTOP) for `length`, longer than the TTL: when it is thawed every lease has
/// expired, and every agent joins again.
fn etcd_frozen(c: &mut Cluster, length: Duration) {
    let mut converge = Duration::ZERO;
    let (from, to) = window(settle(), || {
        c.lab.ok(&["etcd", "freeze"]);
        std::thread::sleep(length);
        let since = unix_now();
        c.lab.ok(&["etcd", "thaw"]);
        converge = c.converge(&NODES, &PODS, since, CONVERGE_LIMIT);
    });
    let tallies = c.prober.tally(from, to);
    let name = format!("etcd frozen {}s, thawed", length.as_secs());
    c.report.scenario(&name, &tallies, &[("converge after thaw", converge)]);
}

fn etcd_killed_and_restarted(c: &mut Cluster) {
    let mut converge = Duration::ZERO;
    let (from, to) = window(settle(), || {
        c.lab.ok(&["etcd", "kill"]);
        std::thread::sleep(TTL + RESYNC);
        let since = unix_now();
        c.lab.ok(&["etcd", "start"]);
        converge = c.converge(&NODES, &PODS, since, CONVERGE_LIMIT);
    });
    let tallies = c.prober.tally(from, to);
    c.report.scenario("etcd killed, restarted", &tallies, &[("converge after restart", converge)]);
}

/// SIGKILL of each node's agent in turn, twice round, each restarted with `lab agent start`.
fn agents_killed_in_a_loop(c: &mut Cluster) {
    let mut restart = Duration::ZERO;
    let (from, to) = window(settle(), || {
        for node in [1u8, 2, 3, 1, 2, 3] {
            let pid = c.agent_pid(node);
            // SAFETY: kill(2) on the pid of a twilld this test's lab started.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
            wait_for("twilld to die", Duration::from_secs(10), || !alive(pid));
            let started = Instant::now();
            c.lab.ok(&["agent", "start", "--node", &node.to_string()]);
            restart = restart.max(started.elapsed());
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let tallies = c.prober.tally(from, to);
    c.report.scenario("twilld kill -9 x6", &tallies, &[("slowest restart to ready", restart)]);
}

/// Runs `body` on a fresh failure cluster (`lab up` arguments `extra`), then what every
/// suite ends with: no peer flapped, `lab down` left nothing behind, no promise broken.
fn suite(tag: &str, name: &str, backend: &str, extra: &[&str], body: impl FnOnce(&mut Cluster)) {
    let _one = serial();
    let root = Root::now();
    let mut c = cluster(tag, name, backend, extra);
    body(&mut c);
    c.report_flaps();
    let pids = lab_pids(&c.lab.status());
    c.lab.down();
    assert_nothing_left(&c, &pids, &root);
    c.report.finish();
}

/// How many times an agent joined again after its lease had expired, while `f` ran.
fn rejoins_during(c: &mut Cluster, f: impl FnOnce(&mut Cluster)) -> usize {
    const REJOINED: &str = "lease had been lost; joined again";
    let before = c.log_count(REJOINED);
    f(c);
    c.log_count(REJOINED) - before
}

#[test]
fn etcd_outages_and_agent_crashes_lose_no_packets() {
    suite("fo", "outages", "vxlan", &[], |c| {
        let rejoins = rejoins_during(c, |c| {
            for length in [TTL + Duration::from_secs(1), 2 * TTL, 3 * TTL] {
                etcd_frozen(c, length);
            }
        });
        // The freezes did what they are for: every lease expired each time.
        assert!(rejoins >= 3 * NODES.len(), "only {rejoins} rejoins after three freezes longer than the TTL");
        etcd_killed_and_restarted(c);
        agents_killed_in_a_loop(c);
    });
}

/// The same mass expiry with plain routes instead of vxlan entries.
#[test]
fn host_gw_survives_an_etcd_freeze() {
    suite("fh", "host-gw", "host-gw", &[], |c| {
        let rejoins = rejoins_during(c, |c| etcd_frozen(c, 2 * TTL));
        assert!(rejoins >= NODES.len(), "only {rejoins} rejoins after a freeze longer than the TTL");
    });
}

#[test]
fn losing_one_member_of_three_loses_no_packets() {
    suite("fm", "member-loss", "vxlan", &["--etcd-members", "3"], |c| {
        for m in ["1", "2", "3"] {
            let (from, to) = window(settle(), || {
                c.lab.ok(&["etcd", "kill", "--member", m]);
                // Long enough for every agent to renew (every TTL/3) while the member is gone.
                std::thread::sleep(TTL);
                c.lab.ok(&["etcd", "start", "--member", m]);
            });
            let tallies = c.prober.tally(from, to);
            c.report.scenario(&format!("etcd member {m} of 3 killed"), &tallies, &[]);
        }
    });
}

#[test]
fn a_powered_off_node_is_withdrawn_and_nothing_leaks() {
    let _one = serial();
    let root = Root::now();
    let mut c = cluster("fp", "power-off", "vxlan", &[]);
    let status = c.lab.status();
    let pids = lab_pids(&status);
    let node3 = status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "node-3").unwrap().clone();
    let subnet = node3["subnets"][0].as_str().unwrap().to_string();
    let node_ip = node3["ip"].as_str().unwrap().to_string();
    let survivors: Vec<String> = status["nodes"].as_array().unwrap()[..2]
        .iter()
        .map(|n| n["netns"].as_str().unwrap().to_string())
        .collect();
    for ns in &survivors {
        assert_eq!(
            entries_towards(ns, &subnet, &node_ip).len(),
            3,
            "route, FDB and neighbour to node-3 in {ns}"
        );
    }

    let off = power_off(&status, 3);
    let slowest = wait_withdrawn(&survivors, &subnet, &node_ip, off);
    if slowest > TTL + RESYNC + Duration::from_secs(1) {
        c.report
            .failures
            .push(format!("node-3's routes withdrawn after {slowest:?}, promised within TTL + resync"));
    }
    wait_for("node-3's record to go", CONVERGE_LIMIT, || {
        c.get("node-1", "nodes").is_some_and(|n| n.len() == 2 && !n.iter().any(|r| r["name"] == "node-3"))
    });
    wait_for("node-3's pods' records to go", 2 * TTL + CONVERGE_LIMIT, || {
        c.get("node-1", "pods").is_some_and(|p| !p.iter().any(|r| r["node"] == "node-3"))
    });
    let pods_gone = off.elapsed();
    let tallies: Vec<_> =
        c.prober.tally(off, Instant::now()).into_iter().filter(|t| !t.pair.contains("x/c")).collect();
    let timings = [("routes withdrawn, slowest node", slowest), ("pod records gone", pods_gone)];
    c.report.scenario("node-3 powered off", &tallies, &timings);
    assert_eq!(subnet_claims(&c), 2, "node-3's subnet claim outlived its lease");
    let c_ip = status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == "x/c").unwrap()["ips"][0]
        .as_str()
        .unwrap()
        .to_string();
    // The pod records are gone; node-2 recompiles its policy in its next pass.
    wait_for(&format!("node-2's policy to forget node-3's pod {c_ip}"), Duration::from_secs(10), || {
        !c.lab.ok(&["exec", "node-2", "--", "nft", "list", "table", "inet", "twill_policy"]).contains(&c_ip)
    });

    c.lab.down();
    assert_nothing_left(&c, &pids, &root);
    c.report.finish();
}

/// Waits until no node in `survivors` holds an entry towards the dead node, looking at all of
/// them in each round; returns the slowest one's time since `off`.
fn wait_withdrawn(survivors: &[String], subnet: &str, node_ip: &str, off: Instant) -> Duration {
    let mut left: Vec<&String> = survivors.iter().collect();
    let mut slowest = Duration::ZERO;
    wait_for("the dead node's entries withdrawn", TTL + RESYNC + Duration::from_secs(30), || {
        left.retain(|ns| !entries_towards(ns, subnet, node_ip).is_empty());
        slowest = off.elapsed();
        left.is_empty()
    });
    slowest
}

/// A dead machine: node `i`'s twilld and its pods' servers killed by their pids, its namespace
/// and its pods' namespaces deleted. Nothing is told to leave. Returns when twilld was killed:
/// its lease has not been renewed since.
fn power_off(status: &serde_json::Value, i: u8) -> Instant {
    let node = format!("node-{i}");
    let n = status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node.as_str()).unwrap();
    let mut victims = vec![n["agent_pid"].as_i64().unwrap()];
    let mut namespaces = vec![n["netns"].as_str().unwrap().to_string()];
    for p in status["pods"].as_array().unwrap().iter().filter(|p| p["node"] == node.as_str()) {
        victims.push(p["server_pid"].as_i64().unwrap());
        namespaces.push(p["netns"].as_str().unwrap().to_string());
    }
    let off = Instant::now();
    for pid in victims {
        let pid = i32::try_from(pid).unwrap();
        // SAFETY: kill(2) on pids this test's lab started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_for("a process of the dead node to die", Duration::from_secs(10), || !alive(pid));
    }
    for ns in namespaces {
        netns::delete_named(&ns).unwrap();
    }
    off
}

/// `/twill/subnets/` keys, read from inside the etcd member's namespace (the only place on
/// the machine with a route to the lab's underlay).
fn subnet_claims(c: &Cluster) -> usize {
    let s = c.lab.status();
    let path = |k: &str| Some(std::path::PathBuf::from(s[k].as_str().unwrap()));
    let tls =
        cluster::EtcdTls { cacert: path("etcd_cacert"), cert: path("etcd_cert"), key: path("etcd_key") };
    let conf = cluster::DatastoreConf::parse(s["datastore"].as_str().unwrap(), tls).unwrap();
    let ns = netns::NetNs::open(format!("/run/netns/{}", s["etcd"][0]["netns"].as_str().unwrap())).unwrap();
    let listing = ns.run(|| conf.open().and_then(|store| store.list(cluster::layout::SUBNETS))).unwrap();
    listing.unwrap().entries.len()
}

/// What the root namespace holds that a lab could leak: links named like the lab's and the
/// agents' nftables tables (other suites on the machine come and go, so it is compared with
/// what was there before, not with nothing).
#[derive(Debug, PartialEq, Eq)]
struct Root {
    links: BTreeSet<String>,
    tables: BTreeSet<&'static str>,
}

impl Root {
    fn now() -> Root {
        let out = Command::new("ip").args(["-o", "link", "show"]).output().unwrap();
        let links = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
            .filter(|n| {
                ["twill0", "twill.vxlan", "br0", "node1", "node2", "node3", "outside"].contains(&n.as_str())
            })
            .collect();
        let tables = ["twill_agent", "twill_policy"]
            .into_iter()
            .filter(|t| {
                Command::new("nft").args(["list", "table", "inet", t]).output().unwrap().status.success()
            })
            .collect();
        Root { links, tables }
    }
}

/// After `lab down`: no namespace, no process, no new lab link or agent table in the root
/// namespace.
fn assert_nothing_left(c: &Cluster, pids: &[i32], before: &Root) {
    assert_eq!(c.lab.netns_names(), Vec::<String>::new(), "namespaces left behind");
    assert!(!c.lab.state_dir().exists(), "state dir left behind");
    let leftover: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(leftover.is_empty(), "processes left behind: {leftover:?}");
    let after = Root::now();
    assert!(
        after.links.is_subset(&before.links),
        "links appeared in the root namespace: {after:?}, before {before:?}"
    );
    assert!(
        after.tables.is_subset(&before.tables),
        "tables appeared in the root namespace: {after:?}, before {before:?}"
    );
}
