//! Kernel tier (root): `log group N` rules deliver packets to a [`Listener`] bound to N in the
//! same namespace, with their prefix and a 5-tuple that matches what was sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use testkit::{TestNs, require_privileges};
use twill_fw::nflog::{Listener, Packet, Received, Tuple};
use twill_fw::nft::{
    Batch, Chain, ChainType, Conn, Family, Field, Hook, Match, Rule, Stmt, Table, Value, Verdict,
};

const GROUP: u16 = 4321;

fn log_table() -> Table {
    let mut t = Table::new(Family::Inet, "twt_log");
    let log = |prefix: &str| Stmt::Log { group: GROUP, prefix: prefix.into() };
    let rules = vec![
        Rule::new(
            vec![
                Match::AnyOf { field: Field::CtState, bits: 8 },
                Match::eq(Field::ThDport, Value::Port(7001)),
            ],
            vec![log("tw test tcp"), Stmt::Verdict(Verdict::Accept)],
        ),
        Rule::new(
            vec![Match::eq(Field::L4Proto, Value::Proto(17)), Match::eq(Field::ThDport, Value::Port(7002))],
            vec![log("tw test udp"), Stmt::Verdict(Verdict::Drop)],
        ),
    ];
    t.chains.push(Chain::hooked("out", ChainType::Filter, Hook::Output, 0, rules));
    t
}

fn packets(listener: &mut Listener, want: usize) -> Vec<Packet> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        match listener.recv().expect("recv") {
            Received::Packets(p) => {
                if std::env::var_os("TWILL_SHOW").is_some() {
                    eprintln!("{:?}", listener.last_datagram());
                }
                out.extend(p.into_iter().map(|p| p.expect("parse")));
            }
            Received::Overrun => panic!("overrun"),
            Received::Idle => {}
        }
    }
    out
}

#[test]
fn logged_packets_carry_prefix_and_tuple() {
    require_privileges();
    let ns = TestNs::new("nflog");
    ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
    let mut batch = Batch::new();
    batch.add_table(&log_table());
    Conn::in_netns(ns.ns()).unwrap().apply(&batch).unwrap();
    let mut listener =
        ns.ns().run(|| Listener::bind(GROUP, Duration::from_millis(100))).unwrap().expect("bind the group");
    let (sport, v6_sport) = ns
        .ns()
        .run(|| {
            let server = TcpListener::bind("127.0.0.1:7001").unwrap();
            let client = TcpStream::connect("127.0.0.1:7001").unwrap();
            let udp = UdpSocket::bind("[::1]:0").unwrap();
            // The rule drops it on output: the sender sees EPERM.
            let _ = udp.send_to(b"x", "[::1]:7002");
            drop(server);
            (client.local_addr().unwrap().port(), udp.local_addr().unwrap().port())
        })
        .unwrap();
    let got = packets(&mut listener, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    let tcp = got.iter().find(|p| p.prefix == "tw test tcp").expect("tcp logged");
    let tuple = Tuple::parse(&tcp.payload).unwrap();
    let lo: IpAddr = Ipv4Addr::LOCALHOST.into();
    assert_eq!(tuple, Tuple { src: lo, dst: lo, proto: 6, sport: Some(sport), dport: Some(7001) });
    let udp = got.iter().find(|p| p.prefix == "tw test udp").expect("udp logged");
    let tuple = Tuple::parse(&udp.payload).unwrap();
    let lo6: IpAddr = Ipv6Addr::LOCALHOST.into();
    assert_eq!(tuple, Tuple { src: lo6, dst: lo6, proto: 17, sport: Some(v6_sport), dport: Some(7002) });
    assert_eq!(udp.hw_protocol, 0x86dd);
}

#[test]
fn a_group_has_one_listener() {
    require_privileges();
    let ns = TestNs::new("nflog");
    let first = ns.ns().run(|| Listener::bind(GROUP, Duration::from_millis(100))).unwrap().expect("bind");
    let second = ns.ns().run(|| Listener::bind(GROUP, Duration::from_millis(100))).unwrap();
    assert!(second.is_err(), "a second listener bound group {}", first.group());
}
