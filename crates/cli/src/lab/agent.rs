//! One twilld per node: started inside the node's namespace with the node's directories, and
//! ready when its `/readyz` on the node's loopback answers 200.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use netns::NetNs;

use super::health;
use super::names::Names;
use super::process::{self, Proc};
use super::state::{Backend, DatastoreKind, LabOptions, LabState, NodeState, StateDir};
use super::topology::UPLINK;
use super::{bgp, etcd, layout};
use ::agent::bgp::ROUTE_REFLECTOR_LABEL;

/// Where twilld serves `/readyz` and `/metrics`, inside each node namespace.
pub const HEALTH_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9099);
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
pub const CLUSTER_CIDR6: &str = "fd00:10:244::/56";
/// How often agents repair what drifted; short, so the lab shows repairs quickly.
const RESYNC_SECONDS: u32 = 2;
/// How long a whereabouts reservation must look orphaned before an agent frees it; short,
/// so the lab shows the reconciler at work (an ADD in the lab takes well under a second).
const IPAM_GRACE_SECONDS: u32 = 10;
const READY_LIMIT: Duration = Duration::from_secs(60);

/// Names another twilld binary (a release build, a wrapper that adds logging).
pub const TWILLD_ENV: &str = "TWILL_LAB_TWILLD";

/// `$TWILL_LAB_TWILLD`, else `twilld` next to the running `twill` (both come out of one
/// `cargo build`), else on PATH.
pub fn twilld_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(TWILLD_ENV) {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().context("find the running twill binary")?;
    let beside = me.with_file_name("twilld");
    if beside.is_file() {
        return Ok(beside);
    }
    process::find_program("twilld", "twill-agent").with_context(|| {
        format!(
            "twilld is neither next to {} nor on PATH: build it (cargo build -p twill-agent)",
            me.display()
        )
    })
}

/// The `--datastore` argument every agent of the lab gets.
pub fn datastore_url(dir: &Path, options: &LabOptions) -> String {
    match options.datastore {
        DatastoreKind::File => format!("file:{}", layout::datastore_dir(dir).display()),
        DatastoreKind::Etcd => etcd::datastore_url(options.etcd_members),
    }
}

/// The lab's etcd client TLS files; none with the file datastore.
fn tls(dir: &Path, options: &LabOptions) -> cluster::EtcdTls {
    match options.datastore {
        DatastoreKind::File => cluster::EtcdTls::default(),
        DatastoreKind::Etcd => etcd::client_tls(dir),
    }
}

/// The lab's datastore as a client opens it.
pub fn datastore_conf(dir: &Path, state: &LabState) -> Result<cluster::DatastoreConf> {
    Ok(cluster::DatastoreConf::parse(&datastore_url(dir, &state.options), tls(dir, &state.options))?)
}

/// twilld's command line for `node`.
fn args(dir: &Path, options: &LabOptions, node: &NodeState) -> Vec<String> {
    let mut a: Vec<String> = [
        ("--node", node.name.clone()),
        ("--node-ip", node.ip.to_string()),
        ("--underlay-iface", UPLINK.to_string()),
        ("--datastore", datastore_url(dir, options)),
        ("--backend", options.backend.as_str().to_string()),
        ("--cluster-cidr", CLUSTER_CIDR.to_string()),
        ("--cni-conf-dir", node.conf_dir.display().to_string()),
        ("--cni-bin-dir", layout::bin_dir(dir).display().to_string()),
        ("--state-dir", node.agent_dir.display().to_string()),
        ("--health-listen", HEALTH_ADDR.to_string()),
        ("--resync-seconds", RESYNC_SECONDS.to_string()),
        ("--ipam-grace-seconds", IPAM_GRACE_SECONDS.to_string()),
        ("--lease-ttl-seconds", options.lease_ttl.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    if options.ipv6 {
        a.extend(["--cluster-cidr6".to_string(), CLUSTER_CIDR6.to_string()]);
    }
    if let Some(logs) = &options.flow_logs {
        a.extend(["--flow-logs".to_string(), logs.clone()]);
    }
    let t = tls(dir, options);
    for (flag, path) in [("--etcd-cacert", t.cacert), ("--etcd-cert", t.cert), ("--etcd-key", t.key)] {
        if let Some(p) = path {
            a.extend([flag.to_string(), p.display().to_string()]);
        }
    }
    if options.backend == Backend::Bgp {
        a.extend(bgp_args(options, node));
    }
    a
}

/// The bgp backend's flags: the lab's AS and hold time, the node's rack and route
/// reflector labels, cross-subnet vxlan, and no masquerade when the outside host routes
/// the pod subnets.
fn bgp_args(options: &LabOptions, node: &NodeState) -> Vec<String> {
    let mut a: Vec<String> =
        ["--bgp-as", &bgp::CLUSTER_AS.to_string(), "--bgp-hold-seconds", &bgp::HOLD_SECONDS.to_string()]
            .map(String::from)
            .into();
    if let Ok(bird) = process::find_program("bird", "bird2") {
        a.extend(["--bird".to_string(), bird.display().to_string()]);
    }
    let mut labels = Vec::new();
    if let Some(r) = node.rack {
        labels.push(format!("{}={}", bgp::RACK_LABEL, bgp::rack_label(r)));
    }
    if node.index <= options.route_reflectors {
        labels.push(format!("{ROUTE_REFLECTOR_LABEL}=true"));
    }
    if !labels.is_empty() {
        a.extend(["--node-labels".to_string(), labels.join(",")]);
    }
    if options.cross_subnet {
        a.push("--bgp-cross-subnet-vxlan".into());
    }
    if options.outside_bgp {
        a.extend(["--masquerade".to_string(), "false".to_string()]);
    }
    a
}

/// Starts twilld for `node`; its output goes to the node's `twilld.log`.
pub fn start(dir: &Path, state: &LabState, node: &NodeState) -> Result<Proc> {
    let twilld = twilld_binary()?;
    for d in [&node.conf_dir, &node.agent_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let ns = NetNs::open(netns::named_path(&node.netns))?;
    let log = layout::node_dir(dir, node.index).join("twilld.log");
    process::spawn_in(&ns, &twilld, args(dir, &state.options, node), &log)
}

/// Waits until `node`'s agent answers `/readyz` with 200.
pub fn wait_ready(node: &NodeState, proc: &Proc) -> Result<()> {
    let ns = NetNs::open(netns::named_path(&node.netns))?;
    health::wait_ok(&ns, HEALTH_ADDR, "/readyz", proc, &format!("twilld on {}", node.name), READY_LIMIT)
}

/// The BGP state `node`'s twilld serves on `/bgp` (JSON), or why it could not be read.
pub fn bgp_status(node: &NodeState) -> serde_json::Value {
    let answer = NetNs::open(netns::named_path(&node.netns))
        .map_err(anyhow::Error::from)
        .and_then(|ns| health::http_get(&ns, HEALTH_ADDR, "/bgp", Duration::from_millis(500)));
    match answer {
        Ok((200, body)) => serde_json::from_str(&body)
            .unwrap_or_else(|e| serde_json::json!({"error": format!("bad /bgp answer: {e}")})),
        Ok((code, body)) => serde_json::json!({"error": format!("/bgp answered {code}: {}", body.trim())}),
        Err(e) => serde_json::json!({"error": format!("{e:#}")}),
    }
}

/// True when `node`'s agent answers `/readyz` with 200 now.
pub fn is_ready(node: &NodeState) -> bool {
    NetNs::open(netns::named_path(&node.netns)).is_ok_and(|ns| health::is_ok(&ns, HEALTH_ADDR, "/readyz"))
}

/// `twill lab agent start --node I`: starts the node's twilld again (after a crash, a kill or
/// `agent stop`) and waits until it is ready.
pub fn start_command(names: &Names, index: u8) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let mut state = sd.load()?;
    let node = state.node(index)?.clone();
    if let Some(p) = node.agent.as_ref().filter(|p| p.is_running()) {
        bail!("twilld on {} is already running (pid {})", node.name, p.pid);
    }
    let proc = start(&sd.dir, &state, &node)?;
    if let Some(n) = state.nodes.iter_mut().find(|n| n.index == index) {
        n.agent = Some(proc.clone());
    }
    sd.save(&state)?;
    wait_ready(&node, &proc)?;
    println!("twilld on {} ready (pid {})", node.name, proc.pid);
    Ok(())
}

/// `twill lab agent stop --node I`: SIGTERM, so the agent leaves the cluster.
pub fn stop_command(names: &Names, index: u8) -> Result<()> {
    let sd = StateDir::lock(names, false)?;
    let state = sd.load()?;
    let node = state.node(index)?;
    let procs: Vec<&Proc> = node.agent.iter().collect();
    if let Some(e) = process::stop_all(&procs, Duration::from_secs(10)).into_iter().next() {
        return Err(e);
    }
    println!("twilld on {} stopped", node.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::state::Backend;

    #[test]
    fn agents_get_the_contracts_arguments() {
        let dir = Path::new("/run/twill-lab");
        let node = NodeState {
            index: 2,
            name: "node-2".into(),
            netns: "twl-node-2".into(),
            ip: Ipv4Addr::new(10, 100, 0, 12),
            ip6: None,
            rack: None,
            conf_dir: dir.join("nodes/node-2/net.d"),
            agent_dir: dir.join("nodes/node-2/agent"),
            agent: None,
        };
        let mut options = LabOptions::flat(3, Backend::Vxlan, DatastoreKind::File, false);
        let a = args(dir, &options, &node).join(" ");
        assert_eq!(
            a,
            "--node node-2 --node-ip 10.100.0.12 --underlay-iface eth0 --datastore file:/run/twill-lab/datastore \
             --backend vxlan --cluster-cidr 10.244.0.0/16 --cni-conf-dir /run/twill-lab/nodes/node-2/net.d \
             --cni-bin-dir /run/twill-lab/bin --state-dir /run/twill-lab/nodes/node-2/agent \
             --health-listen 127.0.0.1:9099 --resync-seconds 2 --ipam-grace-seconds 10 --lease-ttl-seconds 30"
        );
        options.ipv6 = true;
        options.datastore = DatastoreKind::Etcd;
        options.etcd_members = 3;
        let a = args(dir, &options, &node).join(" ");
        assert!(
            a.contains("--datastore etcd:https://10.100.0.253:2379,https://10.100.0.252:2379,https://10.100.0.251:2379"),
            "{a}"
        );
        assert!(a.contains("--cluster-cidr6 fd00:10:244::/56"), "{a}");
        assert!(a.ends_with("--etcd-key /run/twill-lab/pki/client-key.pem"), "{a}");
        options = LabOptions {
            racks: 2,
            route_reflectors: 2,
            outside_bgp: true,
            cross_subnet: true,
            ..LabOptions::flat(4, Backend::Bgp, DatastoreKind::File, false)
        };
        let rack2 = NodeState { rack: Some(2), ..node.clone() };
        let a = args(dir, &options, &rack2).join(" ");
        assert!(a.contains("--backend bgp --cluster-cidr"), "{a}");
        assert!(a.contains("--bgp-as 64512 --bgp-hold-seconds 9"), "{a}");
        assert!(a.contains("--node-labels twill.dev/rack=rack2,twill.dev/route-reflector=true"), "{a}");
        assert!(a.ends_with("--bgp-cross-subnet-vxlan --masquerade false"), "{a}");
        options.route_reflectors = 1;
        let a = args(dir, &options, &rack2).join(" ");
        assert!(a.contains("--node-labels twill.dev/rack=rack2 "), "{a}");
    }
}
