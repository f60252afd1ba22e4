//! `twill lab` end to end, as a user runs it: the real `twill` binary builds 3-node clusters
//! out of namespaces with the real twilld, for each backend × datastore, and the tests check
//! what the cluster promises — all pods reach each other, pod IPs are unique, servers see the
//! client pod's own address (no NAT), the outside host sees the node's address (masquerade),
//! an agent killed and restarted keeps its subnet without disturbing pods, a deleted route is
//! repaired, and `lab down` leaves no namespace, link or process behind.
//!
//! Each lab gets its own prefix (`TWILL_LAB_PREFIX`, namespaces `tlab<tag><pid>-*`), so the
//! tests never meet a developer's lab or each other.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

#[path = "support/lab.rs"]
mod lab_support;
use lab_support::{Lab, alive, lab_pids, wait_for};

/// Links of the root namespace with a name the lab or its agents use inside their namespaces
/// (other tests on the machine add and remove unrelated links there at any time).
fn lab_named_root_links() -> BTreeSet<String> {
    let lab_names = ["br0", "outside", "etcd", "node1", "node2", "node3", "twill0", "twill.vxlan"];
    let out = Command::new("ip").args(["-o", "link", "show"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .filter(|n| lab_names.contains(&n.as_str()))
        .collect()
}

/// The agents' nftables table, which must only ever exist inside node namespaces.
fn root_has_agent_table() -> bool {
    Command::new("nft").args(["list", "table", "inet", "twill_agent"]).output().unwrap().status.success()
}

/// Everything a cluster promises, on a lab built with `args`.
fn cluster_works(tag: &str, args: &[&str]) {
    let links_before = lab_named_root_links();
    let table_before = root_has_agent_table();
    let mut lab = Lab::up(tag, args);
    lab.ok(&["ns", "add", "a", "--labels", "team=a"]);
    lab.ok(&["ns", "add", "b"]);
    for (pod, node) in [("a/p1", "1"), ("a/p2", "2"), ("b/p3", "3"), ("b/p4", "1")] {
        lab.ok(&["pod", "add", pod, "--node", node, "--labels", "app=x"]);
    }
    unique_ips_in_node_subnets(&lab.status());

    let (n, m, table) = lab.matrix_all(&["--port", "80", "--protocol", "tcp"]);
    assert_eq!((n, m), (16, 16), "tcp/80:\n{table}");
    let (n, m, table) = lab.matrix_all(&["--port", "81", "--protocol", "udp"]);
    assert_eq!((n, m), (16, 16), "udp/81:\n{table}");

    // No NAT between pods, same node or not; masquerade towards the outside.
    let p1 = lab.pod_ip("a/p1");
    assert_eq!(
        lab.reach("a/p1", "b/p3", &["--port", "80", "--protocol", "tcp"]).as_deref(),
        Some(p1.as_str())
    );
    assert_eq!(
        lab.reach("a/p1", "b/p4", &["--port", "81", "--protocol", "udp"]).as_deref(),
        Some(p1.as_str())
    );
    assert_eq!(
        lab.reach("b/p3", "outside", &["--port", "80", "--protocol", "tcp"]).as_deref(),
        Some("10.100.0.13")
    );
    assert_eq!(
        lab.reach("a/p1", "outside", &["--port", "81", "--protocol", "udp"]).as_deref(),
        Some("10.100.0.11")
    );
    assert!(
        table_before || !root_has_agent_table(),
        "an agent's nftables table appeared in the root namespace"
    );
    if args.contains(&"--ipv6") {
        ipv6_works_too(&lab);
    }

    agent_restart_keeps_subnet_and_pods(&lab);
    deleted_route_is_repaired(&lab);

    lab.ok(&["pod", "del", "b/p4"]);
    assert!(!lab.netns_names().iter().any(|n| n.ends_with("-pod-b-p4")));
    let (n, m, table) = lab.matrix_all(&[]);
    assert_eq!((n, m), (9, 9), "after pod del:\n{table}");

    let pids = lab_pids(&lab.status());
    lab.down();
    assert_eq!(lab.netns_names(), Vec::<String>::new(), "namespaces left behind");
    assert!(!lab.state_dir().exists(), "state dir left behind");
    let leftover: Vec<i32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(leftover.is_empty(), "processes left behind: {leftover:?}");
    let new_links: Vec<String> = lab_named_root_links().difference(&links_before).cloned().collect();
    assert!(new_links.is_empty(), "links appeared in the root namespace: {new_links:?}");
    assert!(
        table_before || !root_has_agent_table(),
        "an agent's nftables table appeared in the root namespace"
    );
}

/// Dual-stack labs: the same over IPv6.
fn ipv6_works_too(lab: &Lab) {
    let (n, m, table) = lab.matrix_all(&["--ipv6"]);
    assert_eq!((n, m), (16, 16), "tcp/80 over IPv6:\n{table}");
    let status = lab.status();
    let pod = status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == "a/p1").unwrap().clone();
    let p1_v6 =
        pod["ips"].as_array().unwrap().iter().filter_map(Value::as_str).find(|ip| ip.contains(':')).unwrap();
    assert_eq!(
        lab.reach("a/p1", "b/p3", &["--port", "81", "--protocol", "udp", "--ipv6"]).as_deref(),
        Some(p1_v6)
    );
    let outside = lab.reach("a/p1", "outside", &["--port", "80", "--ipv6"]);
    assert_eq!(outside.as_deref(), Some("fd00:100::11"), "IPv6 towards the outside is not masqueraded");
}

fn unique_ips_in_node_subnets(status: &Value) {
    let mut seen = BTreeSet::new();
    for pod in status["pods"].as_array().unwrap() {
        let node = status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == pod["node"]).unwrap();
        let subnet: ipnet::IpNet = node["subnets"][0].as_str().unwrap().parse().unwrap();
        for ip in pod["ips"].as_array().unwrap() {
            let ip: std::net::IpAddr = ip.as_str().unwrap().parse().unwrap();
            assert!(seen.insert(ip), "{ip} given twice: {status:#}");
            if ip.is_ipv4() {
                assert!(subnet.contains(&ip), "{ip} of {} is outside {subnet}", pod["pod"]);
            }
        }
    }
    let subnets: BTreeSet<String> =
        status["nodes"].as_array().unwrap().iter().map(|n| n["subnets"][0].to_string()).collect();
    assert_eq!(subnets.len(), 3, "nodes share subnets: {status:#}");
}

fn node_field(status: &Value, node: &str, field: &str) -> Value {
    status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node).unwrap()[field].clone()
}

fn agent_restart_keeps_subnet_and_pods(lab: &Lab) {
    let before = lab.status();
    let subnets = node_field(&before, "node-2", "subnets");
    let pid = node_field(&before, "node-2", "agent_pid").as_i64().unwrap() as i32;
    // SAFETY: kill(2) on the pid of the twilld this test's lab started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    wait_for("twilld on node-2 to die", Duration::from_secs(10), || !alive(pid));
    assert_eq!(node_field(&lab.status(), "node-2", "agent_running"), false);
    // The datapath does not need the agent.
    assert!(
        lab.reach("a/p1", "a/p2", &["--port", "80", "--protocol", "tcp"]).is_some(),
        "pod on node-2 unreachable while its agent is down"
    );
    lab.ok(&["agent", "start", "--node", "2"]);
    let after = lab.status();
    assert_eq!(node_field(&after, "node-2", "subnets"), subnets, "node-2 changed subnet across a restart");
    assert_eq!(node_field(&after, "node-2", "ready"), true);
    let (n, m, table) = lab.matrix_all(&[]);
    assert_eq!((n, m), (16, 16), "after the agent restart:\n{table}");
}

/// Deletes node-1's route to node-2's pod subnet and waits for the agent to put it back.
fn deleted_route_is_repaired(lab: &Lab) {
    let subnet = node_field(&lab.status(), "node-2", "subnets")[0].as_str().unwrap().to_string();
    lab.ok(&["exec", "node-1", "--", "ip", "route", "del", &subnet]);
    wait_for("the route to be repaired", Duration::from_secs(15), || {
        let out = lab.ok(&["exec", "node-1", "--", "ip", "route", "show", &subnet]);
        !out.trim().is_empty()
    });
    assert!(
        lab.reach("a/p1", "a/p2", &["--port", "80", "--protocol", "tcp"]).is_some(),
        "node-2's pod unreachable after the repair"
    );
}

#[test]
fn host_gw_with_file_datastore() {
    cluster_works("hf", &["--backend", "host-gw", "--datastore", "file"]);
}

#[test]
fn host_gw_with_etcd_datastore() {
    cluster_works("he", &["--backend", "host-gw", "--datastore", "etcd"]);
}

#[test]
fn vxlan_with_file_datastore() {
    cluster_works("vf", &["--backend", "vxlan", "--datastore", "file"]);
}

/// Dual-stack, too.
#[test]
fn vxlan_with_etcd_datastore() {
    cluster_works("ve", &["--backend", "vxlan", "--datastore", "etcd", "--ipv6"]);
}

/// SCTP is probed for real; on a kernel without SCTP sockets the probe says so and exits 2.
/// `lab up --ipv6` and `pod add` return only once every family carries traffic: the very
/// first connections between pods on different nodes succeed, IPv6 first (no retry here).
/// Before, a node's link-local addresses were still tentative and the first IPv6 packets
/// forwarded between nodes were lost for a second or two.
#[test]
fn dual_stack_carries_traffic_as_soon_as_up_and_pod_add_return() {
    let mut lab = Lab::up("rdy", &["--nodes", "2", "--ipv6"]);
    lab.ok(&["pod", "add", "a/p1", "--node", "1"]);
    lab.ok(&["pod", "add", "a/p2", "--node", "2"]);
    for options in [&["--port", "80", "--ipv6"][..], &["--port", "80"]] {
        for (from, to) in [("a/p1", "a/p2"), ("a/p2", "a/p1")] {
            assert!(lab.probe(from, to, options).is_some(), "{from} -> {to} {options:?} failed");
        }
    }
    lab.down();
}

#[test]
fn sctp_probe_reports_a_missing_kernel_protocol_clearly() {
    let mut lab = Lab::up("sc", &["--nodes", "1"]);
    lab.ok(&["pod", "add", "a/p1"]);
    lab.ok(&["pod", "add", "a/p2"]);
    let out = lab.run(&["probe", "a/p1", "a/p2", "--port", "80", "--protocol", "sctp"]);
    if testkit::kernel_has_sctp() {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    } else {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no sctp sockets"), "{err}");
    }
    lab.down();
}

/// A lab whose state is lost (a crash, a wiped /run) is still removed by `lab down`.
#[test]
fn down_without_state_removes_the_namespaces() {
    let mut lab = Lab::up("ds", &["--nodes", "1"]);
    lab.ok(&["pod", "add", "a/p1"]);
    let pids = lab_pids(&lab.status());
    std::fs::remove_file(lab.state_dir().join("state.json")).unwrap();
    let out = lab.run(&["down"]);
    lab.down = true;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lab.netns_names(), Vec::<String>::new());
    assert!(!lab.state_dir().exists());
    // Without state the lab cannot know its pids: it reports what still runs in its
    // namespaces instead of killing strangers, and the test ends its own processes.
    let err = String::from_utf8_lossy(&out.stderr);
    for pid in pids {
        assert!(err.contains(&format!("pid {pid} ")), "pid {pid} not reported: {err}");
        // SAFETY: kill(2) on a pid this test's lab started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// A second `up` of the same lab is refused and leaves the first alone; an `up` whose agents
/// never get ready removes everything it built.
#[test]
fn up_refuses_an_existing_lab_and_cleans_up_after_a_failure() {
    let mut lab = Lab::up("up", &["--nodes", "1"]);
    let again = lab.run(&["up", "--nodes", "1"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    lab.ok(&["status"]);
    lab.down();

    let broken = Lab::named(format!("tlabbr{}", std::process::id()), true);
    let out = broken.command(&["up", "--nodes", "2"]).env("TWILL_LAB_TWILLD", "/bin/false").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exited before it was ready"), "{err}");
    assert_eq!(broken.netns_names(), Vec::<String>::new());
    assert!(!broken.state_dir().exists());
}
