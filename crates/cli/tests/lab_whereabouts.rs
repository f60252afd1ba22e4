//! The whereabouts acceptance on a real 3-node lab (etcd with TLS, 3 members; twilld on
//! every node): 3 nodes × 50 concurrent `twill cni add` inside the node namespaces of a
//! macvlan secondary network on one /24 give 150 distinct addresses, and pods on different
//! nodes reach each other over it. Then 50 more ADDs are SIGKILLed at random points (plus
//! one reservation made for a node that does not exist, its pod gone): twilld's reconciler
//! frees what no pod record backs, GC on each node frees the rest of what the runtime no
//! longer has — and afterwards the reservations are exactly the live attachments, none lost.
//!
//! The kill moments come from a seed printed by the test; TWILL_CRASH_SEED replays it.

#[path = "lab_whereabouts/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "support/kill_exec.rs"]
mod kill_exec;
#[path = "support/lab.rs"]
mod lab_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cni_exec::{RawExec, Runtime, RuntimeConf};
use cni_spec::Attachment;
use harness::{Lab, Node, POD_NS, RANGE, cni_add, loaded, network, published, reservations, text};
use ipnet::IpNet;
use kill_exec::{KillExec, Rng, Trigger};
use lab_support::wait_for;
use netns::NetNs;
use testkit::TestNs;

const PER_NODE: usize = 50;
const CRASHES: usize = 50;

/// A pod the test keeps: its namespace, node index, container ID and address.
struct Pod {
    ns: TestNs,
    node: usize,
    id: String,
    ip: IpAddr,
}

fn rt(id: &str, pod: &TestNs) -> RuntimeConf {
    RuntimeConf {
        container_id: id.into(),
        netns: pod.path().display().to_string(),
        ifname: "net1".into(),
        args: vec![("K8S_POD_NAMESPACE".into(), POD_NS.into()), ("K8S_POD_NAME".into(), id.into())],
        ..Default::default()
    }
}

/// 50 concurrent `twill cni add` on every node at once.
fn concurrent_adds(lab: &Lab, nodes: &[Node]) -> Vec<Pod> {
    let namespaces: Vec<(usize, usize, TestNs)> = (0..nodes.len())
        .flat_map(|n| (0..PER_NODE).map(move |i| (n, i)))
        .map(|(n, i)| (n, i, TestNs::new(&format!("wbl{n}"))))
        .collect();
    let t0 = Instant::now();
    let started: Vec<_> = namespaces
        .into_iter()
        .map(|(n, i, ns)| {
            let id = format!("p{}-{i}", n + 1);
            let child = cni_add(lab, &nodes[n], &ns, &id);
            (ns, n, id, child)
        })
        .collect();
    let pods: Vec<Pod> = started
        .into_iter()
        .map(|(ns, node, id, child)| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "add {id}: {}", text(&out));
            let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let ip: IpNet = result["ips"][0]["address"].as_str().unwrap().parse().unwrap();
            Pod { ns, node, id, ip: ip.addr() }
        })
        .collect();
    eprintln!("{} concurrent ADDs on {} nodes took {:?}", pods.len(), nodes.len(), t0.elapsed());
    pods
}

fn ping(from: &TestNs, to: IpAddr) -> bool {
    from.exec(&["ping", "-c", "1", "-w", "3", &to.to_string()]).status.success()
}

/// One ADD on each node through the runtime crate, not killed: live pods, and how long an
/// ADD takes here (the kill moments are spread over twice that).
fn calibrate(nodes: &[Node]) -> (Vec<Pod>, Duration) {
    let mut took = Vec::new();
    let pods = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| {
            let ns = TestNs::new(&format!("wbc{n}"));
            let id = format!("c{}", n + 1);
            let exec = RawExec::in_netns(NetNs::open(&node.netns).unwrap());
            let runtime = Runtime::with_exec(vec![node.bin_dir.clone()], node.cache.clone(), Box::new(exec));
            let t0 = Instant::now();
            let r = runtime.add(&loaded(&network(node, None)), &rt(&id, &ns)).unwrap();
            took.push(t0.elapsed());
            Pod { ns, node: n, id, ip: r.ips[0].address.addr() }
        })
        .collect();
    took.sort();
    (pods, took[took.len() / 2])
}

/// 50 ADDs, each SIGKILLed (or not) at a random moment; returns the ones that completed.
fn crashing_adds(nodes: &[Node], rng: &mut Rng, span: Duration) -> (Vec<Pod>, usize) {
    let mut alive = Vec::new();
    let mut killed = 0;
    for batch in 0..CRASHES / 10 {
        let outcomes: Vec<Option<Pod>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..10)
                .map(|k| {
                    let n = k % nodes.len();
                    let node = &nodes[n];
                    let at = Instant::now() + rng.below(span);
                    s.spawn(move || {
                        let ns = TestNs::new(&format!("wbk{n}"));
                        let id = format!("k{}-{batch}-{k}", n + 1);
                        let exec = KillExec::new(&node.netns, Trigger::At(at));
                        let runtime = Runtime::with_exec(
                            vec![node.bin_dir.clone()],
                            node.cache.clone(),
                            Box::new(exec),
                        );
                        let list = loaded(&network(node, None));
                        match runtime.add(&list, &rt(&id, &ns)) {
                            Ok(r) => Some(Pod { ns, node: n, id, ip: r.ips[0].address.addr() }),
                            // The sandbox goes with the crash: its namespace is dropped here.
                            Err(_) => None,
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in outcomes {
            match o {
                Some(p) => alive.push(p),
                None => killed += 1,
            }
        }
    }
    (alive, killed)
}

/// One ADD on node-1 recorded for a node that does not exist; its pod is then gone too.
fn ghost_reservation(nodes: &[Node]) -> IpAddr {
    let node = &nodes[0];
    let ns = TestNs::new("wbghost");
    let runtime = Runtime::with_exec(
        vec![node.bin_dir.clone()],
        node.cache.clone(),
        Box::new(RawExec::in_netns(NetNs::open(&node.netns).unwrap())),
    );
    let mut list = network(node, Some("node-ghost"));
    list["plugins"].as_array_mut().unwrap().truncate(1);
    let r = runtime.add(&loaded(&list), &rt("ghost", &ns)).unwrap();
    r.ips[0].address.addr()
}

fn gc_every_node(nodes: &[Node], live: &[&Pod]) {
    for (n, node) in nodes.iter().enumerate() {
        let exec = RawExec::in_netns(NetNs::open(&node.netns).unwrap());
        let runtime = Runtime::with_exec(vec![node.bin_dir.clone()], node.cache.clone(), Box::new(exec));
        let valid: Vec<Attachment> = live
            .iter()
            .filter(|p| p.node == n)
            .map(|p| Attachment { container_id: p.id.clone(), ifname: "net1".into() })
            .collect();
        let report = runtime.gc(&loaded(&network(node, None)), &valid).unwrap();
        assert!(report.gc_sent, "GC reached the plugins on {}", node.name);
    }
}

#[test]
fn three_nodes_concurrent_adds_crashes_gc_and_reconcile() {
    let lab = Lab::up("wb", &["--datastore", "etcd", "--etcd-members", "3", "--backend", "host-gw"]);
    let nodes = lab.nodes();
    assert_eq!(nodes.len(), 3);
    let mut pods = concurrent_adds(&lab, &nodes);
    let ips: BTreeSet<IpAddr> = pods.iter().map(|p| p.ip).collect();
    assert_eq!(ips.len(), 3 * PER_NODE, "150 ADDs, 150 distinct addresses");
    let range: IpNet = RANGE.parse().unwrap();
    assert!(ips.iter().all(|ip| range.contains(ip)));
    let held = reservations(&lab);
    assert_eq!(held.len(), 3 * PER_NODE);
    for p in &pods {
        assert_eq!(held[&p.id], (p.ip.to_string(), nodes[p.node].name.clone()), "{}", p.id);
    }
    // Secondaries on different nodes talk over the underlay.
    for (a, b) in [(0, PER_NODE), (PER_NODE, 2 * PER_NODE), (2 * PER_NODE + 7, 3)] {
        assert!(
            ping(&pods[a].ns, pods[b].ip),
            "{} ({}) -> {} ({})",
            pods[a].id,
            pods[a].ip,
            pods[b].id,
            pods[b].ip
        );
    }
    wait_for("150 pod records", Duration::from_secs(60), || published(&lab).len() == 3 * PER_NODE);

    let (calibration, add_takes) = calibrate(&nodes);
    pods.extend(calibration);
    let mut rng = Rng::seeded("three_nodes_concurrent_adds_crashes_gc_and_reconcile");
    // Ten at a time take longer than one: the kill moments are spread over several ADDs' time.
    let span = 6 * add_takes;
    let (survivors, killed) = crashing_adds(&nodes, &mut rng, span);
    eprintln!("crash phase (kills within {span:?}): {} completed, {killed} killed", survivors.len());
    assert!(killed > 0, "some ADDs were killed");
    pods.extend(survivors);
    let ghost = ghost_reservation(&nodes);
    let live_ids: BTreeSet<String> = pods.iter().map(|p| p.id.clone()).collect();
    let stranded = reservations(&lab).into_keys().filter(|id| !live_ids.contains(id)).count();
    eprintln!("reservations without a live attachment after the crashes: {stranded}");
    // The reconciler frees every reservation no pod record backs: the ghost (its node does
    // not exist) and the ADDs killed before twill-pod recorded them.
    wait_for("the reconciler to free unbacked reservations", Duration::from_secs(90), || {
        let records = published(&lab);
        reservations(&lab).keys().all(|id| live_ids.contains(id) || records.contains(id))
    });
    assert!(!reservations(&lab).values().any(|(ip, _)| *ip == ghost.to_string()), "ghost freed");
    let live: Vec<&Pod> = pods.iter().collect();
    gc_every_node(&nodes, &live);
    let held = reservations(&lab);
    let want: BTreeMap<String, (String, String)> =
        pods.iter().map(|p| (p.id.clone(), (p.ip.to_string(), nodes[p.node].name.clone()))).collect();
    assert_eq!(held, want, "exactly the live attachments, none lost");
    // And the pool still hands out distinct addresses to the next pods.
    let next = TestNs::new("wbnext");
    let out = cni_add(&lab, &nodes[1], &next, "next").wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ip: IpNet = r["ips"][0]["address"].as_str().unwrap().parse().unwrap();
    assert!(!pods.iter().any(|p| p.ip == ip.addr()), "{ip} is already a live pod's");
    eprintln!("{}", lab.cluster(&["get", "ippools"]).lines().take(5).collect::<Vec<_>>().join("\n"));
}
