//! Source spoofing past NetworkPolicy (issue 16), in the lab: a policy lets only x/a reach
//! y/b on UDP SPOOF_PORT. Pods forge x/a's IPv4 and IPv6 source towards y/b — z/b on y/b's
//! own node (bridged to it), z/a on x/a's node (routed to y/b's node over the underlay) — and
//! z/a claims x/a's addresses towards its node with a gratuitous ARP reply and an
//! unsolicited neighbour advertisement. The network list twilld writes turns `spoofchk` on,
//! so none of it may land; x/a itself must get through.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use netns::NetNs;
use serde_json::Value;

use crate::forge::{Receiver, arp_claim, na_claim, udp_from};
use crate::harness::Lab;

const SPOOF_PORT: u16 = 8181;

const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-xa, namespace: y}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]
    ports: [{protocol: UDP, port: 8181}]
";

/// A lab pod: its namespace, node, addresses and its interface's MAC.
struct LabPod {
    ns: NetNs,
    node: String,
    v4: IpAddr,
    v6: IpAddr,
}

fn pod(status: &Value, name: &str) -> LabPod {
    let p = status["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == name)
        .unwrap_or_else(|| panic!("no pod {name}"));
    let ips: Vec<IpAddr> =
        p["ips"].as_array().unwrap().iter().map(|ip| ip.as_str().unwrap().parse().unwrap()).collect();
    LabPod {
        ns: NetNs::open(netns::named_path(p["netns"].as_str().unwrap())).unwrap(),
        node: p["node"].as_str().unwrap().to_string(),
        v4: *ips.iter().find(|ip| ip.is_ipv4()).unwrap(),
        v6: *ips.iter().find(|ip| ip.is_ipv6()).unwrap(),
    }
}

fn mac_of(ns: &NetNs) -> [u8; 6] {
    let h = nl::Handle::in_netns(ns).unwrap();
    h.link_get("eth0").unwrap().unwrap().mac.unwrap()
}

/// The MAC node `node` keeps for `ip` on its bridge.
fn node_neighbour(lab: &Lab, node: &str, ip: IpAddr) -> Option<String> {
    let out = lab.ok(&["lab", "exec", node, "--", "ip", "neigh", "show", &ip.to_string()]);
    out.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).map(str::to_string)
}

/// Runs the spoofing cases; returns failures (empty: none landed, x/a got through).
pub fn spoofing(lab: &Lab) -> Vec<String> {
    lab.apply(POLICY);
    let status = lab.status();
    let (xa, yb) = (pod(&status, "x/a"), pod(&status, "y/b"));
    let attackers = [("same node as y/b", pod(&status, "z/b")), ("x/a's node", pod(&status, "z/a"))];
    assert_ne!(xa.node, yb.node, "the test needs x/a and y/b on different nodes");
    let rx = Receiver::start(&yb.ns, SPOOF_PORT);
    let mut failures = Vec::new();
    for (target, forged) in [(yb.v4, xa.v4), (yb.v6, xa.v6)] {
        // The policy takes a moment to reach y/b's node: x/a keeps trying until it is in force.
        let deadline = Instant::now() + Duration::from_secs(20);
        let legit = format!("legit {forged}");
        while !rx.saw(&legit, Duration::from_millis(300)) && Instant::now() < deadline {
            let _ = udp_from(&xa.ns, forged, SocketAddr::new(target, SPOOF_PORT), &legit, 1);
        }
        if !rx.saw(&legit, Duration::ZERO) {
            failures.push(format!("x/a's own datagram from {forged} never reached y/b"));
        }
        for (place, m) in &attackers {
            let payload = format!("forged {forged} from {place}");
            // Refused on the way out is as good as dropped on the way in.
            let _ = udp_from(&m.ns, forged, SocketAddr::new(target, SPOOF_PORT), &payload, 5);
            if rx.saw(&payload, Duration::from_millis(800)) {
                failures
                    .push(format!("a datagram forged with x/a's {forged} from a pod on {place} reached y/b"));
            }
        }
    }
    failures.extend(neighbour_claims(lab, &xa, &attackers[1].1));
    lab.ok(&["lab", "policy", "delete", "y/only-xa"]);
    failures
}

/// z/a claims x/a's addresses towards their node; the node must keep x/a's MAC.
fn neighbour_claims(lab: &Lab, xa: &LabPod, m: &LabPod) -> Vec<String> {
    let node = &xa.node;
    for ip in [xa.v4, xa.v6] {
        // Until one answer comes, for up to 3 s: one lost echo on a busy machine is no failure.
        lab.ok(&["lab", "exec", node, "--", "ping", "-c", "1", "-w", "3", &ip.to_string()]);
    }
    // A neighbour entry is only overridden after its lock time (1 s).
    std::thread::sleep(Duration::from_millis(1200));
    let m_mac = mac_of(&m.ns);
    let (IpAddr::V4(v4), IpAddr::V6(v6)) = (xa.v4, xa.v6) else { unreachable!() };
    let _ = arp_claim(&m.ns, "eth0", m_mac, v4.octets());
    let _ = na_claim(&m.ns, "eth0", m_mac, v6);
    std::thread::sleep(Duration::from_millis(300));
    let m_mac = nl::format_mac(&m_mac);
    [xa.v4, xa.v6]
        .into_iter()
        .filter(|ip| node_neighbour(lab, node, *ip).as_deref() == Some(m_mac.as_str()))
        .map(|ip| format!("{node} now sends {ip} (x/a) to z/a's MAC {m_mac}"))
        .collect()
}
