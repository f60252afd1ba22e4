//! "Ready" means carrying traffic in every family the lab built, not merely configured.
//!
//! IPv6 makes the difference: an address is tentative while duplicate address detection runs
//! (a second or two after its link comes up), and while a link's link-local address is
//! tentative the kernel sends no neighbour solicitation for a *forwarded* packet — it has no
//! source address to send it from — so the first IPv6 connections between pods on different
//! nodes would be lost. The underlay's links come up with DAD off (topology.rs); the pods'
//! gateway links are made by the CNI plugins, so `pod add` waits for them to settle. Each
//! step then proves itself with a probe per family.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netns::NetNs;

use super::probe::{self, Verdict};
use super::state::{LabState, PodState};
use super::topology::{OUTSIDE_IP, OUTSIDE_IP6};
use super::wire::{PORTS, Protocol};

/// DAD takes one retransmission interval (1 s) after a random delay of up to 1 s; a link
/// still tentative well after that will not settle by waiting.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// How long a step may take to carry its first packet once it is configured.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// Every node reaches the outside host's server over each underlay family.
pub fn underlay(state: &LabState) -> Result<()> {
    for node in &state.nodes {
        let ns = NetNs::open(netns::named_path(&node.netns))?;
        let mut targets = vec![IpAddr::from(OUTSIDE_IP)];
        if node.ip6.is_some() {
            targets.push(OUTSIDE_IP6.into());
        }
        for ip in targets {
            carries(&ns, SocketAddr::new(ip, PORTS[0]), &format!("{} to the outside host", node.name))?;
        }
    }
    Ok(())
}

/// The pod's addresses and its node's gateway links have left the tentative state, and its
/// server answers its node on every one of its addresses.
pub fn pod(node_ns: &NetNs, pod_ns: &NetNs, pod: &PodState) -> Result<()> {
    if pod.ips.iter().any(IpAddr::is_ipv6) {
        settle_ipv6(node_ns, pod_ns, pod)?;
    }
    for ip in &pod.ips {
        let to = SocketAddr::new(*ip, PORTS[PORTS.len() - 1]);
        carries(node_ns, to, &format!("pod {}/{} from its node", pod.ns, pod.name))?;
    }
    Ok(())
}

/// Only IPv6 has tentative addresses: the pod's own, and its node's gateway links (those
/// holding an address in one of the pod's subnets).
fn settle_ipv6(node_ns: &NetNs, pod_ns: &NetNs, pod: &PodState) -> Result<()> {
    settle(pod_ns, &format!("pod {}/{}", pod.ns, pod.name), &|_| true)?;
    let node = nl::Handle::in_netns(node_ns)?;
    let gateway_links: Vec<u32> = node
        .addr_list(None)?
        .into_iter()
        .filter(|a| pod.ips.iter().any(|ip| a.net.contains(ip) && a.net.addr() != *ip))
        .map(|a| a.index)
        .collect();
    settle(node_ns, "the pod's node", &|a| gateway_links.contains(&a.index))
}

/// Waits until no address `relevant` picks in `ns` is tentative; a failed DAD is an error.
fn settle(ns: &NetNs, what: &str, relevant: &dyn Fn(&nl::Addr) -> bool) -> Result<()> {
    let h = nl::Handle::in_netns(ns)?;
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let addrs: Vec<nl::Addr> = h.addr_list(None)?.into_iter().filter(|a| relevant(a)).collect();
        if let Some(a) = addrs.iter().find(|a| a.is_dad_failed()) {
            bail!("{what}: duplicate address detection failed for {}", a.net);
        }
        let Some(tentative) = addrs.iter().find(|a| a.is_tentative()) else { return Ok(()) };
        if Instant::now() >= deadline {
            bail!("{what}: address {} is still tentative after {SETTLE_LIMIT:?}", tentative.net);
        }
        std::thread::sleep(POLL);
    }
}

/// Probes `to` over TCP from `ns` until it answers.
fn carries(ns: &NetNs, to: SocketAddr, what: &str) -> Result<()> {
    let deadline = Instant::now() + PROBE_LIMIT;
    loop {
        let why = match probe::probe(ns, to, Protocol::Tcp).with_context(|| format!("probe {to}"))? {
            Verdict::Connected(_) => return Ok(()),
            Verdict::Failed(why) => why,
        };
        if Instant::now() >= deadline {
            bail!("{what}: no traffic to {to} within {PROBE_LIMIT:?}: {why}");
        }
        std::thread::sleep(POLL);
    }
}
