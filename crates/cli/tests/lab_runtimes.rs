//! Real container runtimes on the lab's nodes, end to end (issue 11, point 5): on ONE 3-node
//! lab with etcd over TLS (its own `TWILL_LAB_PREFIX`), a container started by podman (CNI
//! backend) on node-1 and one started by containerd (`ctr run --cni`) on node-2, each runtime
//! running inside its node's network namespace with the node's network list as
//! `twill lab status --json` reports it (`cni_conf_dir`, `cni_bin_dir`, `network`). Both
//! containers run `twill lab serve`, so every connection tells the address its server saw.
//! The test checks that they
//! - get an address from their node's subnet;
//! - reach lab pods and each other across nodes, and are reached, without NAT;
//! - appear in `twill cluster get pods -o json` (run inside a node with the lab's datastore
//!   settings) with their node and address, and disappear when the runtime removes them;
//! - obey a NetworkPolicy applied with `twill cluster apply -f`, lifted by `delete -f`.
//!
//! A second test records what CNI_ARGS each runtime really passes, through a wrapper plugin.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/runtimes.rs"]
mod runtimes;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ipnet::IpNet;
use lab::{Lab, TWILL};
use runtimes::{Containerd, NodeCmd, NodeNet, NodePodman, client_of, serve_cmd, wait_some};
use serde_json::Value;

/// How long a pod may take to appear in (or leave) the datastore, and a policy to take hold.
const SETTLE: Duration = Duration::from_secs(15);

/// Runs commands on `node` of `lab` (`twill lab exec node-N --`).
fn node_cmd(lab: &Lab, node: &str) -> NodeCmd {
    NodeCmd {
        name: node.to_string(),
        program: PathBuf::from(TWILL),
        pre: ["lab", "exec", node, "--"].into_iter().map(String::from).collect(),
        env: vec![("TWILL_LAB_PREFIX".into(), lab.prefix.clone())],
    }
}

/// The published pods, from `twill cluster get pods -o json` on node-3: (NS/NAME, node,
/// first address).
fn published(lab: &Lab) -> Vec<(String, String, Option<IpAddr>)> {
    let listing: Value =
        serde_json::from_str(&lab.cluster_ok("node-3", &["get", "pods", "-o", "json"])).unwrap();
    let items = listing.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|p| {
            let name = format!("{}/{}", p["namespace"].as_str().unwrap(), p["name"].as_str().unwrap());
            let ip = p["ips"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find_map(|s| s.parse().ok());
            (name, p["node"].as_str().unwrap_or_default().to_string(), ip)
        })
        .collect()
}

/// The client address the server at `ip` saw when lab place `from` connected to port 80.
fn probe(lab: &Lab, from: &str, ip: IpAddr) -> Option<IpAddr> {
    lab.probe(from, &ip.to_string(), &["--port", "80"]).map(|c| c.parse().unwrap())
}

/// [`probe`] for a pair that must connect ([`Lab::reach`]: up to three tries).
fn reach(lab: &Lab, from: &str, ip: IpAddr) -> Option<IpAddr> {
    lab.reach(from, &ip.to_string(), &["--port", "80"]).map(|c| c.parse().unwrap())
}

fn node_net(status: &Value, node: &str) -> (NodeNet, IpNet, PathBuf) {
    let n = status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node).unwrap();
    let net = NodeNet {
        conf_dir: n["cni_conf_dir"].as_str().unwrap().into(),
        bin_dir: n["cni_bin_dir"].as_str().unwrap().into(),
        network: n["network"].as_str().unwrap().into(),
    };
    let subnet = n["subnets"][0].as_str().unwrap().parse().unwrap();
    (net, subnet, netns::named_path(n["netns"].as_str().unwrap()))
}

/// A connection from inside a container (busybox `nc`) to a lab server: the client address
/// the server saw.
fn answer_from(out: &Output) -> Option<IpAddr> {
    out.status.success().then(|| client_of(&String::from_utf8_lossy(&out.stdout))).flatten()
}

fn lab_pod_ip(status: &Value, pod: &str) -> IpAddr {
    let p = status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == pod).unwrap();
    p["ips"][0].as_str().unwrap().parse().unwrap()
}

const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-friends
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          friend: \"yes\"
";

#[test]
fn podman_and_containerd_containers_on_lab_nodes() {
    let lab = Lab::up("rt", &["--nodes", "3", "--datastore", "etcd"]);
    lab.ok(&["ns", "add", "a"]);
    lab.ok(&["pod", "add", "a/friend", "--node", "2", "--labels", "friend=yes"]);
    lab.ok(&["pod", "add", "a/stranger", "--node", "3"]);
    let status = lab.status();
    let (friend, stranger) = (lab_pod_ip(&status, "a/friend"), lab_pod_ip(&status, "a/stranger"));

    let (net1, subnet1, _) = node_net(&status, "node-1");
    let pm = NodePodman::new("rt", node_cmd(&lab, "node-1"), &net1, Path::new(TWILL));
    let pm_id = pm.run_detached("web-pm", &net1.network, &serve_cmd("default/web-pm"));
    let pm_ip = pm.address("web-pm");
    assert!(subnet1.contains(&pm_ip), "podman's container got {pm_ip}, outside node-1's {subnet1}");

    let (net2, subnet2, netns2) = node_net(&status, "node-2");
    let mut ctrd = Containerd::start("rt", node_cmd(&lab, "node-2"), &netns2, Path::new(TWILL));
    ctrd.import_image();
    let ctr_pod = ctrd.run_cni("web-ctr", &net2, &serve_cmd("default/twill-web-ctr")).cni_id();
    let ctr_ip = ctrd.address("web-ctr");
    assert!(subnet2.contains(&ctr_ip), "containerd's container got {ctr_ip}, outside node-2's {subnet2}");

    // Published by the nodes' twilld from what the CNI chain recorded.
    let want = [
        ("default/web-pm".to_string(), "node-1", pm_ip),
        (format!("default/{ctr_pod}"), "node-2", ctr_ip),
        ("a/friend".to_string(), "node-2", friend),
        ("a/stranger".to_string(), "node-3", stranger),
    ];
    let mut seen = Vec::new();
    let all_there = wait_some(SETTLE, || {
        seen = published(&lab);
        want.iter()
            .all(|(p, n, ip)| seen.iter().any(|s| &s.0 == p && s.1 == *n && s.2 == Some(*ip)))
            .then_some(())
    });
    assert!(all_there.is_some(), "twill cluster get pods: want {want:?}, got {seen:?}");

    reach_without_nat(&lab, (&pm, pm_ip), (&ctrd, ctr_ip), (friend, stranger));
    policy_applies_to_runtime_containers(&lab, &[pm_ip, ctr_ip], &ctr_pod, (friend, stranger));

    // The runtimes' own teardown removes the records (CNI DEL → journal → twilld).
    pm.rm(&["web-pm"]);
    ctrd.stop("web-ctr");
    let gone = wait_some(SETTLE, || {
        seen = published(&lab);
        seen.iter().all(|(p, _, _)| p.starts_with("a/")).then_some(())
    });
    assert!(gone.is_some(), "records left after the runtimes removed their containers: {seen:?}");
    // twill-pod's journal entries (`NETWORK@CONTAINERID@IFNAME.json`) went with the DELs.
    for (node, id) in [("node-1", pm_id.as_str()), ("node-2", ctr_pod.as_str())] {
        let (net, _, _) = node_net(&status, node);
        let entry =
            net.conf_dir.with_file_name("agent").join("pods").join(format!("{}@{id}@eth0.json", net.network));
        assert!(!entry.exists(), "{node}: journal entry left: {}", entry.display());
    }
}

/// Across nodes without NAT, both ways, between the containers and the lab's pods: every
/// server saw the client's own address.
fn reach_without_nat(
    lab: &Lab,
    (pm, pm_ip): (&NodePodman, IpAddr),
    (ctrd, ctr_ip): (&Containerd, IpAddr),
    (friend, stranger): (IpAddr, IpAddr),
) {
    let from_pm = |ip: IpAddr| answer_from(&pm.exec("web-pm", &["nc", "-w", "3", &ip.to_string(), "80"]));
    let from_ctr = |ip: IpAddr| answer_from(&ctrd.exec("web-ctr", &["nc", "-w", "3", &ip.to_string(), "80"]));
    assert_eq!(from_pm(stranger), Some(pm_ip), "podman container -> a/stranger on node-3");
    assert_eq!(from_ctr(stranger), Some(ctr_ip), "ctr container -> a/stranger on node-3");
    assert_eq!(from_pm(ctr_ip), Some(pm_ip), "podman container (node-1) -> ctr container (node-2)");
    assert_eq!(from_ctr(pm_ip), Some(ctr_ip), "ctr container (node-2) -> podman container (node-1)");
    for target in [pm_ip, ctr_ip] {
        assert_eq!(reach(lab, "a/stranger", target), Some(stranger), "a/stranger -> {target}");
        assert_eq!(reach(lab, "a/friend", target), Some(friend), "a/friend -> {target}");
    }
}

/// Labels the containers' pods `app=web` with `twill cluster label` (no runtime passes pod
/// labels), applies a policy admitting only `friend=yes` pods, then deletes it.
fn policy_applies_to_runtime_containers(
    lab: &Lab,
    targets: &[IpAddr],
    ctr_pod: &str,
    lab_pods: (IpAddr, IpAddr),
) {
    let (friend, stranger) = lab_pods;
    for pod in ["default/web-pm".to_string(), format!("default/{ctr_pod}")] {
        lab.cluster_ok("node-1", &["label", "pod", &pod, "app=web"]);
    }
    let file = std::env::temp_dir().join(format!("twill-lab-runtimes-policy-{}.yaml", std::process::id()));
    std::fs::write(&file, POLICY).unwrap();
    let path = file.display().to_string();
    lab.cluster_ok("node-1", &["apply", "-f", &path]);
    for &ip in targets {
        let denied = wait_some(SETTLE, || probe(lab, "a/stranger", ip).is_none().then_some(()));
        assert!(denied.is_some(), "a/stranger still reaches {ip} after the policy was applied");
        assert_eq!(
            reach(lab, "a/friend", ip),
            Some(friend),
            "a/friend (friend=yes) -> {ip} under the policy"
        );
    }
    lab.cluster_ok("node-1", &["delete", "-f", &path]);
    let _ = std::fs::remove_file(&file);
    for &ip in targets {
        let open = wait_some(SETTLE, || (probe(lab, "a/stranger", ip) == Some(stranger)).then_some(()));
        assert!(open.is_some(), "a/stranger does not reach {ip} again after delete -f");
    }
}

/// A wrapper for `plugin` that appends `COMMAND|CONTAINERID|NETNS|ARGS` to `log`, then runs
/// twill's plugin of that name.
fn logging_wrapper(bin: &Path, real: &Path, plugin: &str, log: &Path) {
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_twill-cni"), real.join(plugin)).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$CNI_COMMAND|$CNI_CONTAINERID|$CNI_NETNS|$CNI_ARGS\" >> {log}\nexec {real} \"$@\"\n",
        log = log.display(),
        real = real.join(plugin).display()
    );
    let path = bin.join(plugin);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// A network list `args` (twill's bridge, host-local and twill-pod, journal in DIR/journal)
/// whose plugins are logging wrappers writing to the returned log.
fn args_network(dir: &Path) -> (NodeNet, PathBuf) {
    let (bin, real, conf, log) = (dir.join("bin"), dir.join("real"), dir.join("net.d"), dir.join("args.log"));
    for d in [&bin, &real, &conf] {
        std::fs::create_dir_all(d).unwrap();
    }
    for plugin in ["bridge", "host-local", "twill-pod"] {
        logging_wrapper(&bin, &real, plugin, &log);
    }
    let list = serde_json::json!({
        "cniVersion": "1.0.0", "name": "args",
        "plugins": [
            { "type": "bridge", "bridge": "args0", "isGateway": true,
              "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.250.9.0/24" }]],
                        "dataDir": dir.join("ipam") } },
            { "type": "twill-pod", "journalDir": dir.join("journal") },
        ],
    });
    std::fs::write(conf.join("10-args.conflist"), list.to_string()).unwrap();
    (NodeNet { conf_dir: conf, bin_dir: bin, network: "args".into() }, log)
}

/// What podman and ctr really pass to CNI, seen by a logging wrapper around twill's bridge,
/// and the pod names twill-pod makes of it — on a namespace standing in for a node.
#[test]
fn what_podman_and_ctr_pass_to_cni() {
    testkit::require_privileges();
    let node_ns = testkit::TestNs::new("rtargs");
    let dir = std::env::temp_dir().join(format!("twill-rtargs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (net, log) = args_network(&dir);
    let node = NodeCmd {
        name: node_ns.name().to_string(),
        program: "nsenter".into(),
        pre: vec![format!("--net={}", node_ns.path().display())],
        env: Vec::new(),
    };
    let sleep: Vec<String> = ["sleep", "300"].map(String::from).to_vec();

    let pm = NodePodman::new("rtargs", node.clone(), &net, Path::new(TWILL));
    let named = pm.run_detached("Web_1", "args", &sleep);
    let unnamed = pm.run_detached_unnamed("args", &sleep);
    let mut ctrd = Containerd::start("rtargs", node, &node_ns.path(), Path::new(TWILL));
    ctrd.import_image();
    let ctr_id = ctrd.run_cni("args-ctr", &net, &sleep).cni_id();

    let journal = cluster::attachment::Journal::new(dir.join("journal")).list().unwrap();
    let pod_of = |id: &str| {
        let a = journal.iter().find(|a| a.container_id == id).unwrap_or_else(|| panic!("{id}: {journal:?}"));
        (a.namespace.clone(), a.name.clone(), a.netns.clone())
    };
    let auto_name = pm.ok(&["inspect", "--format", "{{.Name}}", &unnamed]).trim().to_string();
    let (ns, name, netns) = pod_of(&named);
    assert_eq!((ns.as_str(), name.as_str()), ("default", "web-1"), "podman --name Web_1");
    assert!(netns.starts_with("/run/netns/netns-"), "podman's netns: {netns}");
    let (_, name, _) = pod_of(&unnamed);
    assert_eq!(name, auto_name.replace('_', "-"), "podman's generated name {auto_name}");
    let (ns, name, netns) = pod_of(&ctr_id);
    assert_eq!((ns.as_str(), name.as_str()), ("default", "twill-args-ctr"), "ctr run --cni ... args-ctr");
    assert!(netns.starts_with("/proc/") && netns.ends_with("/ns/net"), "ctr's netns: {netns}");

    pm.rm(&["Web_1", &unnamed]);
    ctrd.stop("args-ctr");
    let calls = std::fs::read_to_string(&log).unwrap();
    let bridge_calls: Vec<&str> = calls.lines().filter(|l| !l.starts_with("VERSION")).collect();
    eprintln!("CNI calls seen:\n{calls}");
    let podman_args =
        format!("ADD|{named}|{netns_pm}|IgnoreUnknown=1;K8S_POD_NAME=Web_1", netns_pm = pod_of(&named).2);
    assert!(bridge_calls.contains(&podman_args.as_str()), "podman's ADD: {podman_args}\n{calls}");
    assert!(
        bridge_calls.iter().any(|l| l.starts_with(&format!("DEL|{named}|/run/netns/"))),
        "podman DELs: {calls}"
    );
    let ctr_add = format!("ADD|{ctr_id}|{}|", pod_of(&ctr_id).2);
    assert!(bridge_calls.contains(&ctr_add.as_str()), "ctr's ADD has no CNI_ARGS: {ctr_add}\n{calls}");
    assert!(bridge_calls.contains(&format!("DEL|{ctr_id}||").as_str()), "ctr's DEL has no netns: {calls}");
    let left = cluster::attachment::Journal::new(dir.join("journal")).list().unwrap();
    assert!(left.is_empty(), "journal after the runtimes' DELs: {left:?}");
    drop(pm);
    drop(ctrd);
    let _ = std::fs::remove_dir_all(&dir);
}
