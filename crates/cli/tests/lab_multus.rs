//! Multi-network pods on a real lab (`twill lab`, 2 nodes, the real twilld and plugins):
//! NetworkAttachmentDefinitions for a macvlan on the data network (`data0`, host-local per
//! node through definitions whose config is a file in each node's multus `confDir`) and for a
//! bridge network; pods added with `--networks` get eth0 plus net1 (plus net2); pods on
//! different nodes reach each other over net1; the network-status is in the pod's record
//! (`twill cluster get pods -o json`, `twill lab status --json`); `twill cluster get nets`;
//! deleting the definitions and then the pods cleans up everything; a bad annotation gives a
//! clear error and attaches nothing. Then the data network with cluster-wide IPAM
//! (`whereabouts` on the lab's datastore): pods on both nodes get distinct addresses from one
//! range, reach each other, show in `twill cluster get ippools`, and free them at DEL.

#[path = "support/lab.rs"]
mod lab_support;

use std::path::PathBuf;
use std::process::Output;

use lab_support::Lab;
use serde_json::{Value, json};

fn text(out: &Output) -> String {
    format!(
        "{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ip -j addr show DEV` in a pod: its IPv4 addresses.
fn addrs(lab: &Lab, pod: &str, dev: &str) -> Vec<String> {
    let out = lab.run(&["exec", pod, "--", "ip", "-j", "-4", "addr", "show", "dev", dev]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str().map(String::from))
        .collect()
}

fn node_dir(lab: &Lab, node: &str) -> PathBuf {
    lab.state_dir().join("nodes").join(node)
}

/// `twill cluster ARGS` against the lab's datastore, from node-1 (as an operator would).
fn cluster(lab: &Lab, args: &[&str]) -> String {
    lab.cluster_ok("node-1", args)
}

/// The data network's definition (an empty config: each node's file) and the bridge one.
const DEFINITIONS: &str = r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: data}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: side}
spec:
  config: '{"cniVersion": "1.0.0", "name": "side", "type": "bridge", "bridge": "side0",
            "ipam": {"type": "host-local", "subnet": "10.61.0.0/24", "dataDir": "DIR/side-ipam"}}'
"#;

/// `data` on node N: a macvlan on data0 with host-local over this node's part of 10.60.0.0/24.
fn write_node_data_conf(lab: &Lab, status: &Value, node: usize) {
    let n = &status["nodes"][node - 1];
    let dir = PathBuf::from(n["multus_conf_dir"].as_str().unwrap());
    let conf = json!({"cniVersion": "1.0.0", "name": "data", "type": "macvlan", "master": n["data_iface"], "mode": "bridge",
        "capabilities": {"ips": true},
        "ipam": {"type": "host-local", "dataDir": node_dir(lab, &format!("node-{node}")).join("data-ipam"),
                 "ranges": [[{"subnet": "10.60.0.0/24", "rangeStart": format!("10.60.0.{}", node * 50), "rangeEnd": format!("10.60.0.{}", node * 50 + 40)}]]}});
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.conf"), conf.to_string()).unwrap();
}

/// `wdata` on node N: the same macvlan with `whereabouts` over all of 10.62.0.0/24, reading
/// the datastore and the node's name from the flat file this node's twilld writes.
fn write_node_whereabouts_conf(status: &Value, node: usize) {
    let n = &status["nodes"][node - 1];
    let dir = PathBuf::from(n["multus_conf_dir"].as_str().unwrap());
    let flat = PathBuf::from(n["cni_conf_dir"].as_str().unwrap()).join("whereabouts.d/whereabouts.conf");
    assert!(flat.is_file(), "node-{node}'s twilld wrote {}", flat.display());
    let conf = json!({"cniVersion": "1.0.0", "name": "wdata", "type": "macvlan", "master": n["data_iface"], "mode": "bridge",
        "ipam": {"type": "whereabouts", "range": "10.62.0.0/24", "exclude": ["10.62.0.0/28"], "configuration_path": flat}});
    std::fs::write(dir.join("wdata.conf"), conf.to_string()).unwrap();
}

/// The live reservations of the ippools as `(ip, pod, node)`.
fn reservations(lab: &Lab) -> Vec<(String, String, String)> {
    let pools: Value = serde_json::from_str(&cluster(lab, &["get", "ippools", "-o", "json"])).unwrap();
    let mut out: Vec<(String, String, String)> = pools
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["reservations"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["ip"].as_str().unwrap().into(),
                r["pod"].as_str().unwrap().into(),
                r["node"].as_str().unwrap().into(),
            )
        })
        .collect();
    out.sort();
    out
}

fn network_status(record: &Value) -> Vec<(String, String, bool, Vec<String>)> {
    record["network_status"]
        .as_array()
        .unwrap_or_else(|| panic!("no network_status in {record}"))
        .iter()
        .map(|s| {
            let ips = s["ips"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect();
            (
                s["name"].as_str().unwrap().into(),
                s["interface"].as_str().unwrap().into(),
                s["default"] == true,
                ips,
            )
        })
        .collect()
}

#[test]
fn multi_network_pods_on_the_lab() {
    let lab = Lab::up("mu", &["--nodes", "2"]);
    let status = lab.status();
    assert_eq!(status["nodes"][0]["multus_network"], "multus-cni-network");
    let dir = format!("/run/twill-lab-{}", lab.prefix);
    for node in [1, 2] {
        write_node_data_conf(&lab, &status, node);
        let out = lab.ok(&["exec", &format!("node-{node}"), "--", "ip", "-j", "link", "show", "data0"]);
        assert!(out.contains("\"operstate\""), "node-{node} has data0: {out}");
    }
    let file = std::env::temp_dir().join(format!("twill-lab-nads-{}.yaml", std::process::id()));
    std::fs::write(&file, DEFINITIONS.replace("DIR", &dir)).unwrap();
    let applied = lab.ok(&["apply", "-f", file.to_str().unwrap(), "--no-wait"]);
    assert!(applied.contains("network-attachment-definition default/data created"), "{applied}");
    let nets = cluster(&lab, &["get", "nets"]);
    assert!(
        nets.contains("data") && nets.contains("<file in multus confDir>") && nets.contains("bridge"),
        "{nets}"
    );

    let a_sel = r#"[{"name": "data", "ips": ["10.60.0.60/24"]}, {"name": "side"}]"#;
    lab.ok(&[
        "pod",
        "add",
        "default/a",
        "--node",
        "1",
        "--networks",
        a_sel,
        "--annotation",
        "team.example/owner=me",
    ]);
    lab.ok(&["pod", "add", "default/b", "--node", "2", "--networks", "data"]);
    lab.ok(&["pod", "add", "default/c", "--node", "1"]);
    assert_eq!(addrs(&lab, "default/a", "net1"), ["10.60.0.60"]);
    assert_eq!(addrs(&lab, "default/a", "net2"), ["10.61.0.2"]);
    assert_eq!(addrs(&lab, "default/b", "net1"), ["10.60.0.100"], "node 2's host-local range");
    assert!(
        addrs(&lab, "default/c", "net1").is_empty(),
        "a pod without a selection has the cluster network only"
    );
    let ping = lab.run(&["exec", "default/a", "--", "ping", "-c1", "-w3", "10.60.0.100"]);
    assert!(ping.status.success(), "a (node-1) reaches b (node-2) over net1: {}", text(&ping));
    let probe = lab.run(&["probe", "default/a", "default/b", "--port", "80"]);
    assert!(probe.status.success(), "the cluster network still works: {}", text(&probe));

    let pods: Value = serde_json::from_str(&cluster(&lab, &["get", "pods", "-o", "json"])).unwrap();
    let a = pods.as_array().unwrap().iter().find(|p| p["name"] == "a").unwrap();
    let a_ip =
        lab.status()["pods"].as_array().unwrap().iter().find(|p| p["pod"] == "default/a").unwrap()["ips"][0]
            .clone();
    assert_eq!(
        network_status(a),
        [
            ("twill".into(), "eth0".into(), true, vec![a_ip.as_str().unwrap().to_string()]),
            ("default/data".into(), "net1".into(), false, vec!["10.60.0.60".into()]),
            ("default/side".into(), "net2".into(), false, vec!["10.61.0.2".into()]),
        ]
    );
    assert_eq!(a["annotations"]["team.example/owner"], "me");
    let in_status =
        lab.status()["pods"].as_array().unwrap().iter().find(|p| p["pod"] == "default/b").unwrap().clone();
    assert_eq!(
        network_status(&in_status)[1],
        ("default/data".into(), "net1".into(), false, vec!["10.60.0.100".into()])
    );

    // A bad annotation: a clear error, nothing attached, nothing left.
    let bad = lab.run(&["pod", "add", "default/bad", "--node", "1", "--networks", "data/x/y"]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("more than one '/'"), "{}", text(&bad));
    assert!(lab.status()["pods"].as_array().unwrap().iter().all(|p| p["pod"] != "default/bad"));
    let reserved = |node: &str, net: &str| {
        std::fs::read_dir(node_dir(&lab, node).join(net)).into_iter().flatten().flatten().count()
    };
    let twill_before = reserved("node-1", "agent/ipam/twill");

    // Definitions deleted first, then the pods: everything goes.
    lab.ok(&["delete", "-f", file.to_str().unwrap(), "--no-wait"]);
    for pod in ["default/a", "default/b", "default/c"] {
        lab.ok(&["pod", "del", pod]);
    }
    let attachments = |node: &str| {
        std::fs::read_dir(node_dir(&lab, node).join("multus/attachments")).into_iter().flatten().count()
    };
    assert_eq!((attachments("node-1"), attachments("node-2")), (0, 0));
    assert!(reserved("node-1", "agent/ipam/twill") < twill_before);
    for (node, net) in [("node-1", "data-ipam/data"), ("node-2", "data-ipam/data")] {
        let left: Vec<_> = std::fs::read_dir(node_dir(&lab, node).join(net))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n != "lock" && !n.starts_with("last_reserved"))
            .collect();
        assert!(left.is_empty(), "{node} {net}: {left:?}");
    }
    let side_left = std::fs::read_dir(format!("{dir}/side-ipam/side"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .count();
    assert_eq!(side_left, 0);
    let _ = std::fs::remove_file(file);

    // The data network again, now with cluster-wide addresses.
    for node in [1, 2] {
        write_node_whereabouts_conf(&status, node);
    }
    let wfile = std::env::temp_dir().join(format!("twill-lab-wnad-{}.yaml", std::process::id()));
    std::fs::write(
        &wfile,
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: wdata}\n",
    )
    .unwrap();
    lab.ok(&["apply", "-f", wfile.to_str().unwrap(), "--no-wait"]);
    for (pod, node) in [("default/d", "1"), ("default/e", "2"), ("default/f", "1")] {
        lab.ok(&["pod", "add", pod, "--node", node, "--networks", "wdata"]);
    }
    let ips: Vec<String> =
        ["default/d", "default/e", "default/f"].iter().flat_map(|p| addrs(&lab, p, "net1")).collect();
    let mut distinct = ips.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "three pods, three addresses: {ips:?}");
    assert!(
        ips.iter()
            .all(|ip| ip.starts_with("10.62.0.")
                && ip.rsplit('.').next().unwrap().parse::<u8>().unwrap() >= 16),
        "{ips:?}"
    );
    let ping = lab.run(&["exec", "default/d", "--", "ping", "-c1", "-w3", &ips[1]]);
    assert!(ping.status.success(), "d (node-1) reaches e (node-2) over net1: {}", text(&ping));
    let held = reservations(&lab);
    let who: Vec<(&str, &str)> = held.iter().map(|(_, pod, node)| (pod.as_str(), node.as_str())).collect();
    assert_eq!(held.len(), 3, "{held:?}");
    for want in [("default/d", "node-1"), ("default/e", "node-2"), ("default/f", "node-1")] {
        assert!(who.contains(&want), "{want:?} in {held:?}");
    }
    lab.ok(&["delete", "-f", wfile.to_str().unwrap(), "--no-wait"]);
    for pod in ["default/d", "default/e", "default/f"] {
        lab.ok(&["pod", "del", pod]);
    }
    assert_eq!(reservations(&lab), [], "DEL freed every cluster-wide address");
    let _ = std::fs::remove_file(wfile);
}
