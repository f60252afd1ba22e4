//! Kernel tier: the BGP backend with real BIRDs, one per node namespace, the nodes plugged
//! into a bridge in a switch namespace. The nodes learn each other's pod subnets over the
//! iBGP mesh into the kernel (protocol bird, metric 116); BIRD runs inside the node's
//! namespace and nowhere else; a peer removed from the cluster is removed by `configure`,
//! never by a restart; a killed BIRD is restarted with graceful restart recovery and not one
//! route disappears meanwhile, on any node; a node that leaves has its routes withdrawn at
//! once by its peers while it keeps its own.

mod support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::TempDir;
use testkit::{TestNs, wait_until};
use twill_agent::backend::{self, Backend, BackendConf, Local, Peer};
use twill_agent::bgp::kernel::is_twill_bgp_route;
use twill_agent::bgp::{BgpConf, PeerBgp};
use twill_agent::record::BackendKind;

/// `bird` on PATH; panics with the fix when BIRD is not installed.
pub fn bird_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("bird"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("bird is not installed: these tests need BIRD 2 (apt-get install bird2, see scripts/install-deps.sh)"))
}

struct Node {
    ns: TestNs,
    index: u8,
    backend: Box<dyn Backend>,
    /// BIRD's directory (configuration, socket, pid file, log).
    bird_dir: PathBuf,
}

fn node_ip(i: u8) -> IpAddr {
    format!("10.97.0.{}", 10 + i).parse().unwrap()
}

fn subnet(i: u8) -> ipnet::IpNet {
    format!("10.244.{i}.0/24").parse().unwrap()
}

fn local(i: u8) -> Local {
    Local { node: format!("node-{i}"), node_ip: node_ip(i), subnet: subnet(i), subnet6: None }
}

fn peer(i: u8) -> Peer {
    Peer {
        name: format!("node-{i}"),
        node_ip: node_ip(i),
        node_ip6: None,
        subnet: subnet(i),
        subnet6: None,
        vtep_mac: None,
        bgp: Some(PeerBgp { asn: 64512, route_reflector: false }),
    }
}

/// Node namespaces on a bridge, each with the BGP backend built inside it.
fn cluster(tag: &str, n: u8, state: &TempDir) -> (TestNs, Vec<Node>) {
    testkit::require_privileges();
    let bird = bird_binary();
    let switch = TestNs::new(&format!("{tag}s"));
    let sh = switch.handle();
    let br = sh.bridge_ensure("br0", None, None).unwrap();
    sh.link_set_up(br.index, true).unwrap();
    let mut nodes = Vec::new();
    for i in 1..=n {
        let ns = TestNs::new(&format!("{tag}{i}"));
        let port = format!("n{i}");
        sh.veth_add(&port, "eth0", Some(ns.ns()), None, None, None).unwrap();
        let p = sh.link_get(&port).unwrap().unwrap();
        sh.link_set_master(p.index, Some(br.index)).unwrap();
        sh.link_set_up(p.index, true).unwrap();
        let h = ns.handle();
        let eth0 = h.link_get("eth0").unwrap().unwrap();
        h.addr_add(eth0.index, ipnet::IpNet::new(node_ip(i), 24).unwrap(), false).unwrap();
        h.link_set_up(eth0.index, true).unwrap();
        let conf = BackendConf {
            node: format!("node-{i}"),
            node_ip: node_ip(i),
            underlay: "eth0".into(),
            state_dir: state.path().join(format!("node-{i}")),
            bgp: Some(BgpConf {
                cluster_as: 64512,
                node_as: None,
                route_reflector: false,
                mesh: true,
                hold_seconds: 9,
                graceful_restart_seconds: 120,
                cross_subnet_vxlan: false,
                bird: bird.clone(),
                scan_seconds: 1,
            }),
        };
        // Built inside the node's namespace: its netlink socket and its BIRD live there.
        let backend = ns.ns().run(|| backend::build(BackendKind::Bgp, &conf)).unwrap().unwrap();
        let bird_dir = conf.state_dir.join("bird");
        nodes.push(Node { ns, index: i, backend, bird_dir });
    }
    (switch, nodes)
}

impl Node {
    /// One reconcile pass with `peers` (by index).
    fn sync(&mut self, peers: &[u8]) {
        self.backend.ensure_local(&local(self.index)).unwrap();
        let peers: Vec<Peer> = peers.iter().filter(|p| **p != self.index).map(|p| peer(*p)).collect();
        self.backend.sync(&peers).unwrap();
    }

    /// The pod subnets twill's BIRD routed in this node's kernel, with their gateways.
    fn bgp_routes(&self) -> Vec<(String, Option<IpAddr>)> {
        let routes = self.ns.handle().route_list(None, Some(254)).unwrap();
        let mut out: Vec<_> =
            routes.iter().filter(|r| is_twill_bgp_route(r)).map(|r| (r.dst.to_string(), r.gw)).collect();
        out.sort();
        out
    }

    fn routed(&self, peers: &[u8]) -> bool {
        let want: Vec<(String, Option<IpAddr>)> = peers
            .iter()
            .filter(|p| **p != self.index)
            .map(|p| (subnet(*p).to_string(), Some(node_ip(*p))))
            .collect();
        self.bgp_routes() == want
    }

    fn bird_pid(&self) -> Option<i32> {
        self.backend.bgp_status().and_then(|s| s.bird_pid)
    }
}

fn sync_all(nodes: &mut [Node], members: &[u8]) {
    for n in nodes.iter_mut().filter(|n| members.contains(&n.index)) {
        n.sync(members);
    }
}

/// Syncs until every node routes exactly the other members' subnets.
fn converge(nodes: &mut [Node], members: &[u8], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        sync_all(nodes, members);
        if nodes.iter().filter(|n| members.contains(&n.index)).all(|n| n.routed(members)) {
            return;
        }
        let seen: Vec<_> = nodes.iter().map(|n| (n.index, n.bgp_routes())).collect();
        assert!(Instant::now() < deadline, "{what}: routes never converged: {seen:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn netns_of(pid: i32) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn mesh_routes_restarts_and_leaving() {
    let state = TempDir::new("bgp");
    let (_switch, mut nodes) = cluster("bgp", 3, &state);
    let all = [1, 2, 3];
    converge(&mut nodes, &all, "full mesh");
    for n in &nodes {
        let pid = n.bird_pid().expect("BIRD runs");
        assert_eq!(
            netns_of(pid),
            n.ns.ns().identity().unwrap(),
            "BIRD of node-{} runs outside its namespace",
            n.index
        );
    }
    // The status is read during a sync, before that pass looks at the kernel: the one of the
    // pass that saw the routes converge can predate them. The next pass's must show them.
    sync_all(&mut nodes, &all);
    for n in &nodes {
        let status = n.backend.bgp_status().unwrap();
        assert!(status.error.is_none(), "{status:?}");
        assert_eq!(status.summary(), "2/2 up", "{status:?}");
        assert_eq!(status.kernel_routes, 2, "{status:?}");
        assert!(
            status.sessions.iter().all(|s| s.routes_learned == 1 && s.routes_announced == 1),
            "{status:?}"
        );
    }

    // node-3 leaves the cluster: the others drop its session by `configure`, not a restart.
    let pids: Vec<Option<i32>> = nodes.iter().map(Node::bird_pid).collect();
    converge(&mut nodes[..2], &[1, 2], "node-3 gone from the datastore");
    assert_eq!(nodes.iter().map(Node::bird_pid).take(2).collect::<Vec<_>>(), pids[..2], "BIRD was restarted");
    assert!(nodes[0].backend.bgp_status().unwrap().reconfigurations >= 1);
    converge(&mut nodes, &all, "node-3 back");

    bird_killed_keeps_every_route(&mut nodes);
    leaving_withdraws_at_once(&mut nodes);
}

/// Kills node-2's BIRD; the supervisor starts it again with -R. Meanwhile every node's routes
/// are polled: none may disappear.
fn bird_killed_keeps_every_route(nodes: &mut [Node]) {
    let all = [1, 2, 3];
    let pid = nodes[1].bird_pid().unwrap();
    // The BIRD this test's backend started.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut polls = 0;
    loop {
        sync_all(nodes, &all);
        for n in nodes.iter() {
            assert!(
                n.routed(&all),
                "node-{} lost a route while node-2's BIRD restarted: {:?}",
                n.index,
                n.bgp_routes()
            );
        }
        polls += 1;
        let s = nodes[1].backend.bgp_status().unwrap();
        if s.bird_pid.is_some_and(|p| p != pid) && s.sessions_up() == 2 && polls > 3 {
            assert_eq!(s.bird_restarts, 1, "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "node-2's BIRD never came back: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(nodes[1].bird_dir.join("bird.log")).unwrap_or_default();
    assert!(log.contains("Graceful restart started"), "BIRD was not restarted with -R:\n{log}");
}

/// node-1 leaves: its BIRD stops with SIGTERM; the peers withdraw its subnet without waiting
/// for the datastore or the hold timer, and node-1 keeps its routes (persist).
fn leaving_withdraws_at_once(nodes: &mut [Node]) {
    let pid = nodes[0].bird_pid().unwrap();
    nodes[0].backend.shutdown();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "BIRD still runs after shutdown");
    // Well inside the 9 s hold time, which is what a peer that was not told would wait.
    let withdrawn = wait_until(Duration::from_secs(6), || {
        nodes[1..].iter().all(|n| !n.bgp_routes().iter().any(|(d, _)| *d == subnet(1).to_string()))
    });
    assert!(withdrawn, "peers kept node-1's subnet: {:?}", nodes[1].bgp_routes());
    assert!(nodes[0].routed(&[1, 2, 3]), "node-1 lost its routes when it left: {:?}", nodes[0].bgp_routes());
}

#[test]
fn a_missing_bird_is_a_clear_error_at_start() {
    testkit::require_privileges();
    let ns = TestNs::new("bgpnb");
    let state = TempDir::new("bgpnb");
    let h = ns.handle();
    h.veth_add("eth0", "peer0", None, None, None, None).unwrap();
    let conf = BackendConf {
        node: "node-1".into(),
        node_ip: node_ip(1),
        underlay: "eth0".into(),
        state_dir: state.path().into(),
        bgp: Some(BgpConf {
            cluster_as: 64512,
            node_as: None,
            route_reflector: false,
            mesh: true,
            hold_seconds: 9,
            graceful_restart_seconds: 120,
            cross_subnet_vxlan: false,
            bird: "/nonexistent/bird".into(),
            scan_seconds: 1,
        }),
    };
    let e = ns.ns().run(|| backend::build(BackendKind::Bgp, &conf).err()).unwrap().expect("refused");
    assert!(
        e.to_string().starts_with("the BIRD daemon /nonexistent/bird was not found (Debian package bird2"),
        "{e}"
    );
    assert!(!state.path().join("bird").exists(), "nothing is written before BIRD is found");
}
