//! The policy workload, pure: N NetworkPolicies in namespace `bench`, each selecting the
//! server pod and allowing 3 peers (ipBlock /32) on 2 TCP ports — as twill's `World`, and
//! as the classic rendering, one iptables rule per peer and port in one chain the server's
//! traffic jumps to (kube-router's and early Calico's shape, `ESTABLISHED,RELATED` first).
//! Only the last policy allows the client pod (on the iperf3 and connect ports), so a new
//! connection from it walks the whole classic chain.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use policy::Direction;
use policy::{
    IpBlock, LabelSelector, NetworkPolicy, Peer, Pod, PodRef, PolicyPort, PortSpec, Protocol, Rule, World,
};

pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);
/// iperf3's port and the port of the connect-rate listener.
pub const PORTS: [u16; 2] = [5201, 5202];
pub const PEERS_PER_POLICY: usize = 3;
pub const PORTS_PER_POLICY: usize = 2;
/// The chain the classic rendering fills.
pub const CHAIN: &str = "BENCH-POLICY";
const NODE: &str = "bench-node";

/// Policy `i`'s peers and ports: generated addresses in 10.128.0.0/9 and ports from 10000,
/// except for the last policy, whose first peer is the client and whose ports are [`PORTS`].
pub fn peers_and_ports(i: usize, n: usize) -> (Vec<Ipv4Addr>, [u16; 2]) {
    let mut peers: Vec<Ipv4Addr> = (0..PEERS_PER_POLICY)
        .map(|j| {
            // Every other address: peers that do not merge into ranges, as pods rarely do.
            let idx = u32::try_from(2 * (i * PEERS_PER_POLICY + j) + 1).unwrap_or(u32::MAX);
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + idx)
        })
        .collect();
    if i + 1 == n {
        peers[0] = CLIENT_IP;
        return (peers, PORTS);
    }
    let base = 10_000 + u16::try_from(i % 20_000).unwrap_or(0);
    (peers, [base, base + 20_000])
}

fn pod(name: &str, app: &str, ip: Ipv4Addr) -> Pod {
    Pod {
        namespace: "bench".into(),
        name: name.into(),
        labels: [("app".to_string(), app.to_string())].into(),
        ips: vec![ip.into()],
        ports: Vec::new(),
        node: NODE.into(),
    }
}

/// The world of `n` policies, and the node's pods (server and client).
pub fn build_world(n: usize) -> (World, Vec<PodRef>) {
    let mut w = World::new();
    let pods = [pod("server", "srv", SERVER_IP), pod("client", "cli", CLIENT_IP)];
    let refs = pods.iter().map(Pod::key).collect();
    pods.into_iter().for_each(|p| w.add_pod(p));
    for i in 0..n {
        let (peers, ports) = peers_and_ports(i, n);
        let rule = Rule {
            peers: peers
                .iter()
                .map(|ip| {
                    Peer::IpBlock(IpBlock { cidr: ipnet::Ipv4Net::from(*ip).into(), except: Vec::new() })
                })
                .collect(),
            ports: ports
                .iter()
                .map(|p| PolicyPort { protocol: Protocol::Tcp, port: Some(PortSpec::Number(*p)) })
                .collect(),
        };
        w.add_policy(NetworkPolicy {
            namespace: "bench".into(),
            name: format!("p{i}"),
            pod_selector: LabelSelector::labels([("app", "srv")]),
            policy_types: vec![Direction::Ingress],
            ingress: vec![rule],
            egress: Vec::new(),
        });
    }
    (w, refs)
}

/// `iptables-restore` input for the classic rendering of `n` policies.
pub fn iptables_restore(n: usize) -> String {
    let mut out = format!("*filter\n:{CHAIN} - [0:0]\n");
    out.push_str("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    let _ = writeln!(out, "-A FORWARD -d {SERVER_IP}/32 -j {CHAIN}");
    for i in 0..n {
        let (peers, ports) = peers_and_ports(i, n);
        for peer in &peers {
            for port in ports {
                let _ = writeln!(out, "-A {CHAIN} -s {peer}/32 -p tcp -m tcp --dport {port} -j ACCEPT");
            }
        }
    }
    let _ = writeln!(out, "-A {CHAIN} -j DROP\nCOMMIT");
    out
}

/// Rules the classic rendering has for `n` policies.
pub fn classic_rules(n: usize) -> usize {
    n * PEERS_PER_POLICY * PORTS_PER_POLICY + 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::{Endpoint, compile, evaluate};

    #[test]
    fn only_the_last_policy_lets_the_client_in() {
        let (w, _) = build_world(5);
        let (cli, srv) =
            (Endpoint::Pod(PodRef::new("bench", "client")), Endpoint::Pod(PodRef::new("bench", "server")));
        assert!(evaluate(&w, &cli, &srv, 5201, Protocol::Tcp).allowed());
        assert!(!evaluate(&w, &cli, &srv, 80, Protocol::Tcp).allowed());
        let peer = Endpoint::Ip("10.128.0.1".parse().unwrap());
        assert!(evaluate(&w, &peer, &srv, 10_000, Protocol::Tcp).allowed());
        assert!(!evaluate(&w, &peer, &srv, 5201, Protocol::Tcp).allowed());
    }

    #[test]
    fn both_renderings_hold_every_peer_and_port() {
        let text = iptables_restore(4);
        assert_eq!(text.lines().filter(|l| l.starts_with("-A ")).count(), classic_rules(4));
        let last = text.lines().filter(|l| l.contains("--dport 5201")).collect::<Vec<_>>();
        assert_eq!(last.len(), 3, "{text}");
        assert!(last[0].contains("-s 10.77.0.3/32"));
        let (w, pods) = build_world(4);
        let rs = compile(&w, &pods);
        // One box per peer and port, but the last policy's adjacent ports 5201 and 5202
        // merge into one range per peer; plus the server's dispatch entry.
        let boxes = 4 * PEERS_PER_POLICY * PORTS_PER_POLICY - PEERS_PER_POLICY;
        assert_eq!(rs.element_count(), boxes + 1, "{}", rs.text());
        assert!(rs.text().contains("10.77.0.3 . tcp . 5201-5202"), "{}", rs.text());
    }
}
