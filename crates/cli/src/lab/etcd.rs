//! The etcd cluster of a lab started with `--datastore etcd`: one to five members, TLS with
//! client certificates (a CA made for the lab in `STATE/pki`), as a production etcd runs.
//!
//! Every member gets a namespace of its own on the underlay (`PREFIX-etcd`, `PREFIX-etcd2`,
//! ...; 10.100.0.253, .252, ...): twilld runs inside the node namespaces, which cannot reach
//! the loopback of the namespace `twill` was started in, and listening on a real interface of
//! the root namespace would expose the lab's datastore on the host (ADR 0010). Members talk
//! to each other over the underlay; clients use every member's URL and fail over.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cluster::{DatastoreConf, EtcdTls};
use netns::NetNs;

use super::process::{self, Proc};
use super::state::LabState;

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// The most members a lab's etcd has.
pub const MAX_MEMBERS: u8 = 5;
const READY_LIMIT: Duration = Duration::from_secs(30);

/// Member `i`'s (1-based) underlay address: 10.100.0.253, .252, ...
pub fn member_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 100, 0, 254 - i)
}

/// Member `i`'s client URL, reachable from every node.
pub fn client_url(i: u8) -> String {
    format!("https://{}:{CLIENT_PORT}", member_ip(i))
}

/// Every member's client URL.
pub fn client_urls(members: u8) -> Vec<String> {
    (1..=members).map(client_url).collect()
}

fn peer_url(i: u8) -> String {
    format!("http://{}:{PEER_PORT}", member_ip(i))
}

/// `STATE/pki`, the lab's certificate authority and certificates.
pub fn pki_dir(dir: &Path) -> PathBuf {
    dir.join("pki")
}

/// Makes the lab's CA, a server certificate for every member's address (and loopback) and
/// a client certificate.
pub fn make_pki(dir: &Path, members: u8) -> Result<cluster::pki::Pki> {
    let mut names: Vec<String> = (1..=members).map(|i| member_ip(i).to_string()).collect();
    names.extend(["127.0.0.1".to_string(), "localhost".to_string()]);
    Ok(cluster::pki::generate(&pki_dir(dir), &names)?)
}

/// The client side of the lab's TLS: CA, certificate, key.
pub fn client_tls(dir: &Path) -> EtcdTls {
    let p = pki_dir(dir);
    EtcdTls {
        cacert: Some(p.join("ca.pem")),
        cert: Some(p.join("client.pem")),
        key: Some(p.join("client-key.pem")),
    }
}

/// The TLS file paths for `lab status` (empty without etcd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cacert: String,
    pub cert: String,
    pub key: String,
}

pub fn tls_files(dir: &Path, state: &LabState) -> TlsFiles {
    if state.etcd.is_none() {
        return TlsFiles::default();
    }
    let t = client_tls(dir);
    let s = |p: Option<PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
    TlsFiles { cacert: s(t.cacert), cert: s(t.cert), key: s(t.key) }
}

/// Member `i` of `members`: clients on its underlay address and loopback (TLS, client
/// certificates required), peers on the underlay.
fn args(i: u8, members: u8, data_dir: &Path, pki: &Path) -> Vec<String> {
    let cluster: Vec<String> = (1..=members).map(|m| format!("m{m}={}", peer_url(m))).collect();
    let file = |name: &str| pki.join(name).display().to_string();
    let pairs = [
        ("--name", format!("m{i}")),
        ("--data-dir", data_dir.display().to_string()),
        ("--listen-client-urls", format!("{},https://127.0.0.1:{CLIENT_PORT}", client_url(i))),
        ("--advertise-client-urls", client_url(i)),
        ("--listen-peer-urls", peer_url(i)),
        ("--initial-advertise-peer-urls", peer_url(i)),
        ("--initial-cluster", cluster.join(",")),
        ("--initial-cluster-state", "new".to_string()),
        ("--cert-file", file("server.pem")),
        ("--key-file", file("server-key.pem")),
        ("--trusted-ca-file", file("ca.pem")),
    ];
    let mut a: Vec<String> = pairs.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect();
    a.push("--client-cert-auth".into());
    a
}

/// Starts member `i` inside `ns`, data and log under `dir`.
pub fn start(ns: &NetNs, dir: &Path, i: u8, members: u8) -> Result<Proc> {
    let etcd = process::find_program("etcd", "etcd-server")?;
    let data = dir.join(format!("etcd{i}-data"));
    process::spawn_in(ns, &etcd, args(i, members, &data, &pki_dir(dir)), &dir.join(format!("etcd{i}.log")))
}

/// Waits until the cluster answers a TLS client, from inside `ns` (a member's namespace).
pub fn wait_ready(ns: &NetNs, conf: &DatastoreConf, procs: &[&Proc]) -> Result<()> {
    let started = Instant::now();
    loop {
        let answer = ns.run(|| conf.open().and_then(|s| s.check()))?;
        match answer {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= READY_LIMIT => bail!("etcd did not become ready: {e}"),
            Err(_) => {}
        }
        if let Some(dead) = procs.iter().find(|p| !p.is_running()) {
            bail!("etcd (pid {}) exited; see {}", dead.pid, dead.log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The datastore URL of a lab whose etcd has `members` members.
pub fn datastore_url(members: u8) -> String {
    format!("etcd:{}", client_urls(members).join(","))
}

/// Reads a member index from `etcd`, `etcd2`, ...
pub fn member_of(place: &str) -> Option<u8> {
    match place.strip_prefix("etcd")? {
        "" => Some(1),
        n => n.parse().ok().filter(|n| (2..=MAX_MEMBERS).contains(n)),
    }
}

/// The namespace of member `i`.
pub fn member_netns(state: &LabState, i: u8) -> Result<String> {
    let etcd = state.etcd.as_ref().context("this lab has no etcd")?;
    let m = etcd.members.get(usize::from(i.saturating_sub(1)));
    Ok(m.with_context(|| format!("this lab's etcd has {} member(s)", etcd.members.len()))?.netns.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_speak_tls_to_clients_and_find_each_other_on_the_underlay() {
        let a = args(2, 3, Path::new("/run/x/etcd2-data"), Path::new("/run/x/pki")).join(" ");
        assert!(a.contains("--listen-client-urls https://10.100.0.252:2379,https://127.0.0.1:2379"), "{a}");
        assert!(a.contains("--listen-peer-urls http://10.100.0.252:2380"), "{a}");
        assert!(
            a.contains("--initial-cluster m1=http://10.100.0.253:2380,m2=http://10.100.0.252:2380,m3=http://10.100.0.251:2380"),
            "{a}"
        );
        assert!(a.contains("--client-cert-auth") && a.contains("--trusted-ca-file /run/x/pki/ca.pem"), "{a}");
        assert_eq!(datastore_url(2), "etcd:https://10.100.0.253:2379,https://10.100.0.252:2379");
        assert_eq!(
            (member_of("etcd"), member_of("etcd3"), member_of("etcd1"), member_of("etcdx")),
            (Some(1), Some(3), None, None)
        );
    }
}
