//! libcni as a real runtime links it: containerd 1.6 (`ctr run --cni`, go-cni/libcni) on a lab
//! node attaches containers through multus with `00-multus.conf` at cniVersion 0.3.1, 0.4.0 and
//! 1.0.0 (containerd 1.6's libcni stops there; twill's runtime side covers 1.1.0 in
//! tests/multus.rs). multus gives each container the node's cluster network (`twill`) and an
//! always-attached macvlan on the lab's data network; libcni must accept the merged result
//! (both interfaces, addresses pointing at them) in each version, and ctr's teardown DEL
//! must leave neither the multus cache nor an address reservation behind.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/runtimes.rs"]
mod runtimes;

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use lab::{Lab, TWILL};
use runtimes::{Containerd, NodeCmd, NodeNet, serve_cmd};
use serde_json::{Value, json};

fn node_cmd(lab: &Lab, node: &str) -> NodeCmd {
    NodeCmd {
        name: node.to_string(),
        program: PathBuf::from(TWILL),
        pre: ["lab", "exec", node, "--"].into_iter().map(String::from).collect(),
        env: vec![("TWILL_LAB_PREFIX".into(), lab.prefix.clone())],
    }
}

/// A conf dir holding only `00-multus.conf` at `version`: the node's `twill` list as the
/// cluster network, then a macvlan on data0 (10.62.N.0/24, host-local under `dir`).
fn multus_conf_dir(dir: &Path, node_conf_dir: &Path, version: &str, n: u8) -> PathBuf {
    let conf_dir = dir.join(format!("net.d-{version}"));
    std::fs::create_dir_all(&conf_dir).unwrap();
    let twill: Value =
        serde_json::from_slice(&std::fs::read(node_conf_dir.join("10-twill.conflist")).unwrap()).unwrap();
    let conf = json!({
        "cniVersion": version, "name": "multus-cni-network", "type": "multus",
        "cniDir": dir.join(format!("multus-{version}")),
        "delegates": [twill, {
            "cniVersion": version, "name": "data", "type": "macvlan", "master": "data0",
            "ipam": {"type": "host-local", "subnet": format!("10.62.{n}.0/24"), "dataDir": dir.join("ipam")}
        }]
    });
    std::fs::write(conf_dir.join("00-multus.conf"), conf.to_string()).unwrap();
    conf_dir
}

/// The IPv4 address on `dev` inside container `id`.
fn address(ctrd: &Containerd, id: &str, dev: &str) -> Option<std::net::Ipv4Addr> {
    let out = ctrd.exec(id, &["ip", "-o", "-4", "addr", "show", "dev", dev]);
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    let cidr = shown.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
    cidr.split('/').next()?.parse().ok()
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            out.extend(files(&e.path()).into_iter().map(|f| format!("{name}/{f}")));
        } else {
            out.push(name);
        }
    }
    out
}

#[test]
fn containerd_attaches_through_multus_in_every_version_it_speaks() {
    let lab = Lab::up("mc", &["--nodes", "1"]);
    let status = lab.status();
    let node = &status["nodes"][0];
    let node_conf_dir = PathBuf::from(node["cni_conf_dir"].as_str().unwrap());
    let subnet: IpNet = node["subnets"][0].as_str().unwrap().parse().unwrap();
    let dir = lab.state_dir().join("ctr-multus");
    let netns = netns::named_path(node["netns"].as_str().unwrap());
    let mut ctrd = Containerd::start("mc", node_cmd(&lab, "node-1"), &netns, Path::new(TWILL));
    ctrd.import_image();
    for (n, version) in ["0.3.1", "0.4.0", "1.0.0"].into_iter().enumerate() {
        let net = NodeNet {
            conf_dir: multus_conf_dir(&dir, &node_conf_dir, version, n as u8),
            bin_dir: node["cni_bin_dir"].as_str().unwrap().into(),
            network: "multus-cni-network".into(),
        };
        let id = format!("mu{}", version.replace('.', ""));
        ctrd.run_cni(&id, &net, &serve_cmd(&format!("default/{id}")));
        let eth0 = address(&ctrd, &id, "eth0").unwrap_or_else(|| panic!("{version}: no eth0 address"));
        assert!(subnet.contains(&std::net::IpAddr::V4(eth0)), "{version}: eth0 {eth0} outside {subnet}");
        assert_eq!(
            address(&ctrd, &id, "net1"),
            Some(format!("10.62.{n}.2").parse().unwrap()),
            "{version}: net1"
        );
        ctrd.stop(&id);
        let cache = dir.join(format!("multus-{version}/attachments"));
        assert!(files(&cache).is_empty(), "{version}: multus cache left: {:?}", files(&cache));
        let reserved: Vec<String> =
            files(&dir.join("ipam")).into_iter().filter(|f| f.contains("/10.")).collect();
        assert!(reserved.is_empty(), "{version}: reservations left: {reserved:?}");
    }
}
