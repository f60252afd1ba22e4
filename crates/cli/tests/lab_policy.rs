//! NetworkPolicy end to end, as a user runs it: ONE real 3-node lab (dual stack, vxlan, etcd,
//! its own `TWILL_LAB_PREFIX`) with the Kubernetes e2e world — namespaces x, y, z × pods a,
//! b, c spread over the nodes — and every twilld enforcing policy. Each scenario writes
//! policies and labels through `twill lab apply -f`, `policy delete`, `ns label` and
//! `pod label`, then asserts the FULL 9×9 truth table measured by `twill lab matrix --json`
//! against the one `twill_policy::evaluate` computes from what the test wrote (and against a
//! hand-written table). Also: `twill policy explain`, SCTP (compiled and enforced, not
//! probeable on this kernel), no open window while the table is replaced, repair of a
//! deleted table, other firewall users left alone, and no way past a policy by forging a
//! permitted pod's address (same node and cross node; IPv4, IPv6, ARP, NDP).

#[path = "support/forge.rs"]
mod forge;
#[path = "lab_policy/harness.rs"]
mod harness;
#[path = "lab_policy/runner.rs"]
mod runner;
#[path = "lab_policy/scenarios.rs"]
mod scenarios;
#[path = "lab_policy/spoof.rs"]
mod spoof;
#[path = "lab_policy/tables.rs"]
mod tables;
#[path = "support/twilld.rs"]
mod twilld;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::{Lab, NAMESPACES, PODS};
use policy::Protocol::{Sctp, Tcp};
use runner::Runner;
use scenarios::Subnets;
use serde_json::Value;
use tables::{ALL_OPEN, INTO_X_DENIED, INTO_XA_DENIED};
use testkit::policy_docs::np;

#[test]
fn network_policy_in_a_three_node_lab() {
    let lab = Lab::up(&["--nodes", "3", "--backend", "vxlan", "--datastore", "etcd", "--ipv6"]);
    for ns in NAMESPACES {
        lab.ok(&["lab", "ns", "add", ns, "--labels", &format!("ns={ns}")]);
        for (i, pod) in PODS.iter().enumerate() {
            let node = (i + 1).to_string();
            lab.ok(&[
                "lab",
                "pod",
                "add",
                &format!("{ns}/{pod}"),
                "--node",
                &node,
                "--labels",
                &format!("pod={pod}"),
            ]);
        }
    }
    bystanders(&lab, true);
    let started = Instant::now();
    let mut r = Runner::new(&lab);
    r.check("no policy", 80, Tcp, false, Some(ALL_OPEN));
    for s in scenarios::all(&subnets(&lab.status())) {
        r.run(&s);
    }
    sctp(&mut r);
    updates_never_open_a_denied_pod(&mut r);
    deleted_table_is_repaired(&mut r);
    r.failures.extend(spoof::spoofing(&lab));
    r.check("all policies deleted", 80, Tcp, false, Some(ALL_OPEN));
    let node1_table =
        lab.run(&["lab", "exec", "node-1", "--", "nft", "list", "table", "inet", "twill_policy"]);
    if node1_table.status.success() {
        r.failures.push("node-1 keeps a policy table although no pod is isolated".into());
    }
    bystanders(&lab, false);

    let mut p = r.propagation.clone();
    p.sort_by(f64::total_cmp);
    eprintln!(
        "{} tables checked in {:.0}s; writes in force on every node after median {:.2}s, max {:.2}s ({} writes)",
        r.checks,
        started.elapsed().as_secs_f64(),
        p.get(p.len() / 2).copied().unwrap_or_default(),
        p.last().copied().unwrap_or_default(),
        p.len()
    );
    assert!(r.failures.is_empty(), "{} failure(s):\n\n{}", r.failures.len(), r.failures.join("\n\n"));
}

/// node-2's IPv4 pod subnet (pods b) and node-3's IPv6 one (pods c).
fn subnets(status: &Value) -> Subnets {
    let node =
        |name: &str| status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == name).unwrap().clone();
    let subnet = |name: &str, v6: bool| -> String {
        let n = node(name);
        let all = n["subnets"].as_array().unwrap();
        all.iter().filter_map(Value::as_str).find(|s| s.contains(':') == v6).unwrap().to_string()
    };
    Subnets { node2_v4: subnet("node-2", false), node3_v6: subnet("node-3", true) }
}

/// Other firewall users on node-1: an iptables rule and an nftables table, added before any
/// policy (`add`) and found intact after all of them.
fn bystanders(lab: &Lab, add: bool) {
    let exec = |args: &[&str]| {
        let mut all = vec!["lab", "exec", "node-1", "--"];
        all.extend_from_slice(args);
        lab.ok(&all)
    };
    if add {
        exec(&["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "9", "-j", "DROP"]);
        exec(&["nft", "add", "table", "inet", "bystander"]);
        exec(&[
            "nft",
            "add",
            "chain",
            "inet",
            "bystander",
            "c",
            "{ type filter hook forward priority 10; policy accept; }",
        ]);
        return;
    }
    assert!(exec(&["iptables", "-S", "FORWARD"]).contains("--dport 9 -j DROP"), "iptables rule lost");
    assert!(exec(&["nft", "list", "table", "inet", "bystander"]).contains("chain c"), "nft table lost");
    assert!(exec(&["nft", "list", "table", "inet", "twill_agent"]).contains("masquerade"), "masquerade lost");
}

/// SCTP policies are compiled into the nodes' tables (protocol 132 matches work without SCTP
/// sockets); probing SCTP reports the kernel's lack clearly instead of a verdict.
fn sctp(r: &mut Runner) {
    let spec = "podSelector: {matchLabels: {pod: a}}\ningress:\n- ports: [{protocol: SCTP, port: 80}, {protocol: SCTP, port: serve-81-sctp}]";
    let yaml = np("x", "sctp", spec);
    r.lab.apply(&yaml);
    r.model.apply(&yaml);
    let table = r.lab.ok(&["lab", "exec", "node-1", "--", "nft", "list", "table", "inet", "twill_policy"]);
    // Port 80 and the name serve-81-sctp (81 on x/a) merge into one interval.
    for element in ["0.0.0.0/0 . sctp . 80-81", "::/0 . sctp . 80-81"] {
        if !table.contains(element) {
            r.failures.push(format!("sctp: node-1's table lacks {element:?}:\n{table}"));
        }
    }
    let expected = r.model.expected(80, Sctp, false);
    assert_eq!(expected, harness::table(ALL_OPEN), "SCTP/80 is allowed from everywhere");
    assert_eq!(r.model.expected(81, policy::Protocol::Udp, false), harness::table(INTO_XA_DENIED));
    let has_sctp = testkit::kernel_has_sctp();
    let out = r.lab.ok(&["lab", "matrix", "--json", "--protocol", "sctp"]);
    let json: Value = serde_json::from_str(&out).unwrap();
    let cells: Vec<&Value> =
        json["cells"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap()).collect();
    let clear =
        |c: &&Value| c["result"] == "error" && c["detail"].as_str().unwrap_or("").contains("no sctp sockets");
    if !has_sctp && !cells.iter().all(clear) {
        r.failures.push(format!("sctp: probes should all report the missing kernel support: {out}"));
    }
    r.reset();
}

/// While x/a is default-deny, its table is replaced over and over (a policy selecting it
/// comes and goes, changing the table's shape) and pods keep trying to connect — one on the
/// same node (bridged), one on another node (routed), over both families. Not one connection
/// may get through.
fn updates_never_open_a_denied_pod(r: &mut Runner) {
    let deny = np("x", "deny", "podSelector: {}");
    r.lab.apply(&deny);
    r.model.apply(&deny);
    let extra = np(
        "x",
        "extra",
        "podSelector: {matchLabels: {pod: a}}\ningress:\n- from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]",
    );
    let status = r.lab.status();
    let pod =
        |name: &str| status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == name).unwrap().clone();
    let xa = pod("x/a");
    let targets: Vec<SocketAddr> = xa["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| SocketAddr::new(ip.as_str().unwrap().parse().unwrap(), 80))
        .collect();
    let (stop, opened, attempts) = (AtomicBool::new(false), AtomicUsize::new(0), AtomicUsize::new(0));
    let clients: Vec<netns::NetNs> = ["y/a", "z/c"]
        .iter()
        .map(|c| netns::NetNs::open(netns::named_path(pod(c)["netns"].as_str().unwrap())).unwrap())
        .collect();
    std::thread::scope(|s| {
        for ns in &clients {
            for &to in &targets {
                let (stop, opened, attempts) = (&stop, &opened, &attempts);
                s.spawn(move || {
                    ns.run(|| {
                        while !stop.load(Ordering::Relaxed) {
                            attempts.fetch_add(1, Ordering::Relaxed);
                            if TcpStream::connect_timeout(&to, Duration::from_millis(40)).is_ok() {
                                opened.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                    .unwrap();
                });
            }
        }
        // Stops the clients however this ends: a panic below must not leave them looping
        // while the scope waits for them.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for _ in 0..6 {
            r.lab.apply(&extra);
            r.lab.ok(&["lab", "policy", "delete", "x/extra"]);
        }
    });
    let (opened, attempts) = (opened.into_inner(), attempts.into_inner());
    eprintln!(
        "{attempts} connection attempts to default-deny x/a during 12 table replacements: {opened} opened"
    );
    if opened > 0 || attempts == 0 {
        r.failures
            .push(format!("x/a was reachable {opened} times in {attempts} attempts while its table changed"));
    }
    r.check("default deny during updates", 80, Tcp, false, Some(INTO_X_DENIED));
}

/// Someone deletes node-1's table: the agent puts it back within a resync period.
fn deleted_table_is_repaired(r: &mut Runner) {
    r.lab.ok(&["lab", "exec", "node-1", "--", "nft", "delete", "table", "inet", "twill_policy"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed =
            r.lab.run(&["lab", "exec", "node-1", "--", "nft", "list", "table", "inet", "twill_policy"]);
        if listed.status.success() {
            break;
        }
        if Instant::now() > deadline {
            r.failures.push("node-1's deleted policy table was not repaired within 10s".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    r.check("after the repair", 80, Tcp, false, Some(INTO_X_DENIED));
    r.reset();
}

/// SCTP without SCTP sockets: the compiler turns SCTP ports (numbers, ranges, names) into
/// protocol-132 elements for both directions and families, and nft accepts the ruleset.
#[test]
fn sctp_ports_compile_to_sctp_elements() {
    use policy::{NsName, Pod, World, apply_batch, compile, parse_yaml};
    let mut w = World::new();
    for (ns, name, node, v4, v6) in
        [("x", "a", "n1", "10.244.1.2", "fd00:1::2"), ("y", "b", "n2", "10.244.2.2", "fd00:2::2")]
    {
        w.add_pod(Pod {
            namespace: ns.into(),
            name: name.into(),
            labels: [("pod".to_string(), name.to_string())].into(),
            ips: vec![v4.parse().unwrap(), v6.parse().unwrap()],
            ports: harness::e2e_ports(),
            node: node.into(),
        });
    }
    let yaml = np(
        "x",
        "sctp",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {}}]\n  ports: [{protocol: SCTP, port: 80}, {protocol: SCTP, port: 81, endPort: 90}]\negress:\n- ports: [{protocol: SCTP, port: serve-81-sctp}]",
    );
    parse_yaml(&yaml).unwrap().into_iter().for_each(|o| w.add_object(o));
    let rs = compile(&w, &[NsName::new("x", "a")]);
    let elements = |suffix: &str, dir: &str| -> Vec<String> {
        let set = rs.sets.iter().find(|s| s.name.starts_with(dir) && s.name.ends_with(suffix)).unwrap();
        set.elems.iter().map(fw::nft::text::elem_text).collect()
    };
    assert_eq!(elements("_ports4", "ingress"), ["10.244.1.2 . sctp . 80-90", "10.244.2.2 . sctp . 80-90"]);
    assert_eq!(elements("_ports6", "ingress"), ["fd00:1::2 . sctp . 80-90", "fd00:2::2 . sctp . 80-90"]);
    // The named port resolves on each destination; loopback x/a is there too.
    assert_eq!(elements("_ports4", "egress"), ["10.244.1.2 . sctp . 81", "10.244.2.2 . sctp . 81"]);
    testkit::require_privileges();
    let ns = testkit::TestNs::new("pols");
    let path = std::env::temp_dir().join(format!("twill-sctp-{}.nft", std::process::id()));
    std::fs::write(&path, apply_batch(&rs).text()).unwrap();
    let out = ns.exec(&["nft", "-c", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "nft -c rejects the SCTP ruleset: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
