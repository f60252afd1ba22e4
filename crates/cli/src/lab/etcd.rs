//! The etcd datastore of a lab started with `--datastore etcd`.
//!
//! etcd gets a namespace of its own on the underlay (`PREFIX-etcd`, 10.100.0.253): twilld
//! runs inside the node namespaces, which cannot reach the loopback of the namespace `twill`
//! was started in, and listening on a real interface of the root namespace would expose the
//! lab's datastore on the host. On the underlay it is reachable from every node exactly like a
//! datastore server on a cluster's network, and `twill lab` itself talks to it from a thread
//! inside that namespace. Its data directory lives in the lab's state dir (tmpfs under /run).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use netns::NetNs;

use super::health;
use super::process::{self, Proc};
use super::topology::ETCD_IP;

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;

/// The client URL every node and the lab itself use.
pub fn client_url() -> String {
    format!("http://{ETCD_IP}:{CLIENT_PORT}")
}

/// etcd's command line: a one-member cluster, clients on the underlay address and loopback,
/// peers on loopback only.
fn args(data_dir: &Path) -> Vec<String> {
    let peer = format!("http://127.0.0.1:{PEER_PORT}");
    vec![
        "--name".into(),
        "lab".into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--listen-client-urls".into(),
        format!("{},http://127.0.0.1:{CLIENT_PORT}", client_url()),
        "--advertise-client-urls".into(),
        client_url(),
        "--listen-peer-urls".into(),
        peer.clone(),
        "--initial-advertise-peer-urls".into(),
        peer.clone(),
        "--initial-cluster".into(),
        format!("lab={peer}"),
    ]
}

/// Starts etcd inside `ns`, data and log under `dir`.
pub fn start(ns: &NetNs, dir: &Path) -> Result<Proc> {
    let etcd = process::find_program("etcd", "etcd-server")?;
    process::spawn_in(ns, &etcd, args(&dir.join("etcd-data")), &dir.join("etcd.log"))
}

/// Waits until etcd answers `GET /health` with 200.
pub fn wait_ready(ns: &NetNs, proc: &Proc) -> Result<()> {
    let addr = SocketAddr::from((ETCD_IP, CLIENT_PORT));
    health::wait_ok(ns, addr, "/health", proc, "etcd", Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_listens_on_the_underlay_and_keeps_peers_on_loopback() {
        let a = args(Path::new("/run/x/etcd-data")).join(" ");
        assert!(a.contains("--listen-client-urls http://10.100.0.253:2379,http://127.0.0.1:2379"), "{a}");
        assert!(a.contains("--listen-peer-urls http://127.0.0.1:2380"), "{a}");
        assert!(a.contains("--initial-cluster lab=http://127.0.0.1:2380"), "{a}");
        assert!(a.contains("--data-dir /run/x/etcd-data"), "{a}");
    }
}
