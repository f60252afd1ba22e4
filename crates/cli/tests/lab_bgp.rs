//! `twill lab` with the bgp backend, end to end: real twilld processes drive real BIRDs in
//! the node namespaces, a router namespace runs BIRD between rack segments, the outside host
//! peers with the cluster. What the acceptance asks, measured:
//!
//! - 4 nodes in 2 racks: every pod pair connects; a node's `ip route` holds the other nodes'
//!   pod subnets learned by BGP (proto bird, metric 116) and there is no vxlan device; the
//!   outside host reaches pods, and pods the outside host, without NAT either way;
//! - BIRD killed on a node is restarted (graceful restart) and no probe is lost; twilld
//!   killed and started again keeps every route too;
//! - a node that leaves has its routes gone everywhere — nodes, router, outside host —
//!   within the hold time;
//! - `twill cluster get nodes -o wide` shows every node's AS and sessions, `get bgppeers`
//!   the peers without their passwords;
//! - route reflectors give the same matrix; a BGPPeer applied with `lab apply -f` becomes a
//!   session on the nodes it selects, by `configure` (BIRD keeps its pid), and goes again;
//! - cross-subnet: routes inside a rack, vxlan only between racks;
//! - dual stack over etcd: IPv6 sessions, the IPv6 matrix, the outside host over IPv6;
//! - `lab down` leaves no BIRD, twilld or namespace behind.

#[path = "support/lab.rs"]
mod lab_support;
#[path = "support/prober.rs"]
mod prober;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab_support::{Lab, alive, node_field, wait_timed as wait_for};
use prober::{Expect, Pair, Prober};
use serde_json::Value;

/// The lab's hold time (twilld --bgp-hold-seconds): leaving must be seen within it.
const HOLD: Duration = Duration::from_secs(9);

/// How long sessions that already carry routes may take to show in twilld's `/bgp`, which
/// is refreshed each resync (2 s in the lab).
const SESSIONS: Duration = Duration::from_secs(10);

fn add_pods(lab: &Lab, n: u8) {
    for i in 1..=n {
        lab.ok(&["pod", "add", &format!("a/p{i}"), "--node", &i.to_string()]);
    }
}

fn full_matrix(lab: &Lab, pods: usize, extra: &[&str]) {
    for proto in [["--port", "80", "--protocol", "tcp"], ["--port", "81", "--protocol", "udp"]] {
        let mut args = proto.to_vec();
        args.extend_from_slice(extra);
        let (n, m, table) = lab.matrix_all(&args);
        assert_eq!((n, m), (pods * pods, pods * pods), "{args:?}:\n{table}");
    }
}

/// The routes twill's BIRD installed on `place` (`ip -j route show proto bird`), as
/// `(dst, gateway, metric)`.
fn bird_routes(lab: &Lab, place: &str, v6: bool) -> Vec<(String, String, u64)> {
    let family = if v6 { "-6" } else { "-4" };
    let routes = lab.ip_json(place, &[family, "route", "show", "proto", "bird"]);
    let mut out: Vec<(String, String, u64)> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let gw = r["gateway"].as_str().unwrap_or_default().to_string();
            (r["dst"].as_str().unwrap().to_string(), gw, r["metric"].as_u64().unwrap_or(0))
        })
        .collect();
    out.sort();
    out
}

/// Node `node`'s IPv4 pod subnet.
fn subnet(status: &Value, node: &str) -> String {
    node_field(status, node, "subnets")[0].as_str().unwrap().to_string()
}

fn bgp_sessions(status: &Value, node: &str) -> Vec<Value> {
    node_field(status, node, "bgp")["sessions"].as_array().cloned().unwrap_or_default()
}

fn established(sessions: &[Value]) -> usize {
    sessions.iter().filter(|s| s["established"] == true).count()
}

fn bird_pid(status: &Value, node: &str) -> i32 {
    node_field(status, node, "bgp")["bird_pid"].as_i64().expect("BIRD runs") as i32
}

/// Every BIRD and twilld pid the lab's status names.
fn daemon_pids(status: &Value) -> Vec<i32> {
    let nodes =
        status["nodes"].as_array().unwrap().iter().flat_map(|n| [&n["agent_pid"], &n["bgp"]["bird_pid"]]);
    let birds = status["birds"].as_array().unwrap().iter().map(|b| &b["pid"]);
    nodes.chain(birds).filter_map(Value::as_i64).map(|p| p as i32).collect()
}

#[test]
fn racks_route_pods_without_encapsulation_or_nat() {
    let mut lab = Lab::up("bgr", &["--nodes", "4", "--racks", "2", "--backend", "bgp", "--outside-bgp"]);
    add_pods(&lab, 4);
    full_matrix(&lab, 4, &[]);
    let status = lab.status();
    for node in ["node-1", "node-2", "node-3", "node-4"] {
        let others: Vec<String> = ["node-1", "node-2", "node-3", "node-4"]
            .iter()
            .filter(|n| **n != node)
            .map(|n| subnet(&status, n))
            .collect();
        let routes = bird_routes(&lab, node, false);
        let dsts: Vec<String> = routes.iter().map(|r| r.0.clone()).collect();
        let mut want = others.clone();
        want.sort();
        assert_eq!(dsts, want, "{node}: BGP routes {routes:?}");
        assert!(routes.iter().all(|r| r.2 == 116), "{node}: not twill's metric: {routes:?}");
        assert_eq!(
            lab.ip_json(node, &["link", "show", "type", "vxlan"]),
            Value::Array(vec![]),
            "{node} has a vxlan device"
        );
        // twilld's `/bgp` is the status of its last pass (every resync), not of this moment.
        wait_for(&format!("{node}: 3 nodes and its rack's router established"), SESSIONS, || {
            established(&bgp_sessions(&lab.status(), node)) == 4
        });
    }
    // Inside a rack the next hop is the node; across racks, the router.
    let r1 = bird_routes(&lab, "node-1", false);
    assert!(r1.contains(&(subnet(&status, "node-2"), "10.100.1.12".into(), 116)), "{r1:?}");
    assert!(r1.contains(&(subnet(&status, "node-3"), "10.100.1.1".into(), 116)), "{r1:?}");
    let router = status["birds"].as_array().unwrap().iter().find(|b| b["place"] == "router").unwrap().clone();
    assert_eq!(
        established(router["sessions"].as_array().unwrap()),
        5,
        "4 nodes and the outside host: {router:#}"
    );
    assert_eq!(bird_routes(&lab, "outside", false).len(), 4, "the outside host learns every pod subnet");

    // The operator's view: every node's AS and sessions (as of its last renewal), the peers.
    wait_for("4/4 sessions in `twill cluster get nodes -o wide`", Duration::from_secs(20), || {
        let out = lab.cluster_ok("node-1", &["get", "nodes", "-o", "wide"]);
        out.lines()
            .filter(|l| l.starts_with("node-"))
            .filter(|l| l.contains("64512") && l.ends_with("4/4 up"))
            .count()
            == 4
    });
    let peers = lab.cluster_ok("node-1", &["get", "bgppeers", "-o", "wide"]);
    assert!(
        peers
            .lines()
            .any(|l| l.starts_with("rack2-router") && l.contains("10.100.2.1") && l.ends_with("<hidden>")),
        "{peers}"
    );
    assert!(
        !lab.cluster_ok("node-1", &["get", "bgppeers", "-o", "json"]).contains("twill-lab-rack"),
        "a password was printed"
    );

    // No NAT either way.
    let p3 = lab.pod_ip("a/p3");
    assert_eq!(lab.reach("outside", "a/p3", &["--port", "80"]).as_deref(), Some("10.100.0.254"));
    assert_eq!(
        lab.reach("a/p3", "outside", &["--port", "81", "--protocol", "udp"]).as_deref(),
        Some(p3.as_str())
    );

    bird_killed_loses_no_probe(&lab, "node-3", "a/p3");
    twilld_killed_keeps_routes(&lab, "node-2", "a/p2");
    leaving_withdraws_everywhere(&lab, "node-4");

    let pids = daemon_pids(&lab.status());
    assert!(pids.len() >= 4 + 3 + 2, "{pids:?}");
    lab.down();
    assert_eq!(lab.netns_names(), Vec::<String>::new(), "namespaces left behind");
    let left: Vec<i32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "BIRD or twilld left running: {left:?}");
}

/// Runs `disrupt` while UDP datagrams go to `pod`'s server every 50 ms from pod a/p1 and from
/// the outside host (the failure suites' prober); not one may go unanswered.
fn no_probe_lost(lab: &Lab, pod: &str, what: &str, disrupt: impl FnOnce()) {
    let status = lab.status();
    let find =
        |key: &str| status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == key).unwrap().clone();
    let target = find(pod);
    let to = SocketAddr::new(target["ips"][0].as_str().unwrap().parse().unwrap(), 80);
    let clients = [
        ("a/p1", find("a/p1")["netns"].as_str().unwrap().to_string()),
        ("outside", format!("{}-outside", lab.prefix)),
    ];
    let pairs = clients
        .into_iter()
        .map(|(from, netns)| Pair {
            name: format!("{from} -> {pod}"),
            netns: format!("/run/netns/{netns}"),
            to,
            server: pod.to_string(),
            expect: Expect::Reach,
        })
        .collect();
    let prober = Prober::start(pairs);
    let start = Instant::now();
    disrupt();
    // Keep probing a little after the disruption is over.
    std::thread::sleep(Duration::from_secs(2));
    for t in prober.tally(start, Instant::now()) {
        assert!(t.sent >= 20, "{what}: only {} datagrams were sent: {t:?}", t.sent);
        assert_eq!(t.wrong(), 0, "{what}: datagrams lost: {t:?}");
    }
}

fn bird_killed_loses_no_probe(lab: &Lab, node: &str, pod: &str) {
    let pid = bird_pid(&lab.status(), node);
    no_probe_lost(lab, pod, "BIRD killed", || {
        // The BIRD this test's lab started (its twilld's child).
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_for("BIRD to be restarted with its sessions up", Duration::from_secs(60), || {
            let s = lab.status();
            let bgp = node_field(&s, node, "bgp");
            bgp["bird_pid"].as_i64().is_some_and(|p| p as i32 != pid)
                && established(&bgp_sessions(&s, node)) == 4
        });
    });
    assert_eq!(node_field(&lab.status(), node, "bgp")["bird_restarts"], 1);
}

fn twilld_killed_keeps_routes(lab: &Lab, node: &str, pod: &str) {
    let index = node.trim_start_matches("node-");
    let pid = node_field(&lab.status(), node, "agent_pid").as_i64().unwrap() as i32;
    no_probe_lost(lab, pod, "twilld killed and started again", || {
        // The twilld this test's lab started; its BIRD dies with it (parent-death signal).
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        wait_for("twilld to die", Duration::from_secs(10), || !alive(pid));
        lab.ok(&["agent", "start", "--node", index]);
        wait_for("the new BIRD's sessions", Duration::from_secs(60), || {
            established(&bgp_sessions(&lab.status(), node)) == 4
        });
    });
    let log = std::fs::read_to_string(lab.state_dir().join(format!("nodes/{node}/twilld.log"))).unwrap();
    assert!(log.contains("graceful_restart_recovery=true"), "BIRD was not started with -R:\n{log}");
}

/// `agent stop`: the node leaves; its subnet must vanish from every node, the router and the
/// outside host within the hold time.
fn leaving_withdraws_everywhere(lab: &Lab, node: &str) {
    let gone = subnet(&lab.status(), node);
    let index = node.trim_start_matches("node-");
    lab.ok(&["agent", "stop", "--node", index]);
    let places = ["node-1", "node-2", "node-3", "router", "outside"];
    let took = wait_for("the leaving node's routes to go", HOLD, || {
        places.iter().all(|p| !bird_routes(lab, p, false).iter().any(|r| r.0 == gone))
    });
    eprintln!("{node}'s subnet {gone} withdrawn everywhere {took:?} after it left");
    let (n, m, table) = lab.matrix(&["--port", "80"]);
    // Its pod stays, unreachable from the others but itself; the other 9 pairs connect.
    assert!(n >= 9 && m == 16, "{table}");
}

#[test]
fn route_reflectors_and_applied_bgp_peers() {
    let lab = Lab::up("bgrr", &["--nodes", "4", "--backend", "bgp", "--route-reflectors", "1"]);
    add_pods(&lab, 4);
    full_matrix(&lab, 4, &[]);
    wait_for("the reflector's sessions with every node", SESSIONS, || {
        established(&bgp_sessions(&lab.status(), "node-1")) == 3
    });
    let status = lab.status();
    for node in ["node-2", "node-3", "node-4"] {
        let s = bgp_sessions(&status, node);
        assert_eq!(s.len(), 1, "{node} peers only with the reflector: {s:?}");
        assert_eq!(s[0]["peer"], "route reflector node-1");
    }
    // A reflected route keeps its next hop: node-2 reaches node-3 directly.
    let r2 = bird_routes(&lab, "node-2", false);
    assert!(r2.contains(&(subnet(&status, "node-3"), "10.100.0.13".into(), 116)), "{r2:?}");

    let file = lab.state_dir().join("peer.yaml");
    std::fs::write(
        &file,
        "apiVersion: twill.dev/v1alpha1\nkind: BGPPeer\nmetadata: {name: edge}\nspec:\n  peerIP: 10.100.0.250\n  asNumber: 65200\n  nodeSelector: {matchLabels: {twill.dev/route-reflector: \"true\"}}\n",
    )
    .unwrap();
    let pid = bird_pid(&status, "node-1");
    let out = lab.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("bgppeer edge created"), "{out}");
    let has_edge = |node: &str| bgp_sessions(&lab.status(), node).iter().any(|s| s["peer"] == "BGPPeer edge");
    wait_for("the BGPPeer's session on the reflector", Duration::from_secs(15), || has_edge("node-1"));
    assert!(!has_edge("node-2"), "node-2 is not selected");
    assert_eq!(bird_pid(&lab.status(), "node-1"), pid, "BIRD was restarted, not reconfigured");
    lab.ok(&["delete", "-f", file.to_str().unwrap()]);
    wait_for("the BGPPeer's session to go", Duration::from_secs(15), || !has_edge("node-1"));
    full_matrix(&lab, 4, &[]);
}

#[test]
fn cross_subnet_uses_vxlan_only_between_racks() {
    let lab = Lab::up("bgx", &["--nodes", "4", "--racks", "2", "--backend", "bgp", "--cross-subnet"]);
    add_pods(&lab, 4);
    full_matrix(&lab, 4, &[]);
    let status = lab.status();
    assert_eq!(
        bird_routes(&lab, "node-1", false).iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        [subnet(&status, "node-2")]
    );
    let vxlan = lab.ip_json("node-1", &["-4", "route", "show", "dev", "twill.vxlan", "proto", "116"]);
    let mut dsts: Vec<String> =
        vxlan.as_array().unwrap().iter().map(|r| r["dst"].as_str().unwrap().to_string()).collect();
    dsts.sort();
    let mut want = vec![subnet(&status, "node-3"), subnet(&status, "node-4")];
    want.sort();
    assert_eq!(dsts, want, "vxlan routes to the other rack: {vxlan}");
    // Without --outside-bgp the outside host knows no pod subnet: masquerade.
    assert_eq!(lab.reach("a/p1", "outside", &["--port", "80"]).as_deref(), Some("10.100.1.11"));
}

#[test]
fn dual_stack_over_etcd_peers_over_ipv6_too() {
    let lab = Lab::up(
        "bg6",
        &["--nodes", "3", "--backend", "bgp", "--ipv6", "--outside-bgp", "--datastore", "etcd"],
    );
    add_pods(&lab, 3);
    full_matrix(&lab, 3, &[]);
    full_matrix(&lab, 3, &["--ipv6"]);
    let routes6 = bird_routes(&lab, "node-1", true);
    assert_eq!(routes6.len(), 2, "IPv6 pod subnets of node-2 and node-3: {routes6:?}");
    assert!(routes6.iter().all(|r| r.1.starts_with("fd00:100::") && r.2 == 116), "{routes6:?}");
    assert_eq!(
        established(&bgp_sessions(&lab.status(), "node-1")),
        6,
        "2 nodes and the outside host, per family"
    );
    let status = lab.status();
    let pod = status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == "a/p2").unwrap().clone();
    let p2_v6 = pod["ips"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|ip| ip.contains(':'))
        .unwrap()
        .to_string();
    assert_eq!(lab.reach("outside", "a/p2", &["--port", "80", "--ipv6"]).as_deref(), Some("fd00:100::254"));
    assert_eq!(lab.reach("a/p2", "outside", &["--port", "80", "--ipv6"]).as_deref(), Some(p2_v6.as_str()));
}

#[test]
fn impossible_combinations_are_refused_before_anything_is_built() {
    testkit::require_privileges();
    let lab = Lab::named(format!("tlabbgn{}", std::process::id()), true);
    for (args, want) in [
        (&["--racks", "2", "--backend", "host-gw"][..], "host-gw needs every node on one L2 segment"),
        (&["--outside-bgp"], "--outside-bgp needs --backend bgp"),
        (&["--nodes", "2", "--racks", "3", "--backend", "bgp"], "--racks 3 needs at least 3 nodes"),
        (&["--backend", "bgp", "--cross-subnet"], "--cross-subnet needs --racks 2 or more"),
        (
            &["--nodes", "2", "--backend", "bgp", "--route-reflectors", "3"],
            "--route-reflectors 3 is more than the 2 nodes",
        ),
    ] {
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let out = lab.run(&all);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(lab.netns_names(), Vec::<String>::new());
        assert!(!lab.state_dir().join("state.json").exists());
    }
}
