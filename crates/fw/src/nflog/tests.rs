use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::*;

/// One datagram captured from kernel 6.18 (tests/nflog.rs with TWILL_SHOW=1): a TCP SYN
/// 127.0.0.1:33030 → 127.0.0.1:7001 logged with prefix `tw test tcp` and a UDP datagram
/// [::1]:32951 → [::1]:7002 logged with `tw test udp`, both on the output hook (3), without
/// timestamps (locally sent packets carry none).
const CAPTURED: [u8; 276] = [
    132, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 16, 225, 8, 0, 1, 0, 8, 0, 3, 0, 16, 0, 10, 0,
    116, 119, 32, 116, 101, 115, 116, 32, 116, 99, 112, 0, 8, 0, 5, 0, 0, 0, 0, 1, 8, 0, 11, 0, 0, 0, 0, 0,
    8, 0, 14, 0, 0, 0, 0, 0, 64, 0, 9, 0, 69, 0, 0, 60, 254, 242, 64, 0, 64, 6, 61, 199, 127, 0, 0, 1, 127,
    0, 0, 1, 129, 6, 27, 89, 145, 175, 33, 139, 0, 0, 0, 0, 160, 2, 255, 215, 254, 48, 0, 0, 2, 4, 255, 215,
    4, 2, 8, 10, 19, 219, 215, 122, 0, 0, 0, 0, 1, 3, 3, 10, 124, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 10, 0, 16, 225, 8, 0, 1, 0, 134, 221, 3, 0, 16, 0, 10, 0, 116, 119, 32, 116, 101, 115, 116, 32, 117,
    100, 112, 0, 8, 0, 5, 0, 0, 0, 0, 1, 8, 0, 11, 0, 0, 0, 0, 0, 8, 0, 14, 0, 0, 0, 0, 0, 53, 0, 9, 0, 96,
    2, 30, 109, 0, 9, 17, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 1, 128, 183, 27, 90, 0, 9, 0, 28, 120, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 16, 225,
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn captured_datagram_gives_both_packets() {
    let got: Vec<Packet> = parse_datagram(&CAPTURED).into_iter().map(Result::unwrap).collect();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].prefix.as_str(), got[0].hw_protocol, got[0].hook), ("tw test tcp", 0x0800, 3));
    assert_eq!((got[0].timestamp, got[0].outdev), (None, Some(1)));
    let tcp = Tuple::parse(&got[0].payload).unwrap();
    let want =
        Tuple { src: ip("127.0.0.1"), dst: ip("127.0.0.1"), proto: 6, sport: Some(33030), dport: Some(7001) };
    assert_eq!(tcp, want);
    assert_eq!((got[1].prefix.as_str(), got[1].hw_protocol), ("tw test udp", 0x86dd));
    let udp = Tuple::parse(&got[1].payload).unwrap();
    let want = Tuple { src: ip("::1"), dst: ip("::1"), proto: 17, sport: Some(32951), dport: Some(7002) };
    assert_eq!(udp, want);
    assert_eq!(udp.proto_name(), "udp");
}

#[test]
fn a_cut_datagram_is_an_error_not_a_panic() {
    // The datagram ends with the 20-byte NLMSG_DONE of the multipart batch.
    for (len, oks) in [(0, 0), (10, 0), (20, 0), (100, 0), (140, 1), (275, 2)] {
        let got = parse_datagram(&CAPTURED[..len]);
        assert_eq!(got.iter().filter(|r| r.is_ok()).count(), oks, "{len}: {got:?}");
    }
    assert!(parse_datagram(&CAPTURED[..100]).last().is_some_and(Result::is_err));
    assert!(parse_datagram(&CAPTURED).iter().all(Result::is_ok));
}

#[test]
fn timestamps_and_missing_headers() {
    let mut w = crate::nft::wire::writer::Writer::new();
    w.begin_msg(SUBSYS_ULOG << 8, 0, 0, 2, 5);
    w.put(NFULA_PACKET_HDR, &[0x08, 0x00, 2, 0]);
    let mut ts = 1_700_000_000u64.to_be_bytes().to_vec();
    ts.extend_from_slice(&250_000u64.to_be_bytes());
    w.put(NFULA_TIMESTAMP, &ts);
    w.end_msg();
    w.begin_msg(SUBSYS_ULOG << 8, 0, 0, 2, 5);
    w.put_str(NFULA_PREFIX, "no header");
    w.end_msg();
    w.begin_msg(SUBSYS_ULOG << 8, 0, 0, 2, 5);
    w.put(NFULA_PACKET_HDR, &[0x08, 0x00, 2, 0]);
    w.put(NFULA_TIMESTAMP, &[0xff; 16]);
    w.end_msg();
    let got = parse_datagram(&w.into_bytes());
    let first = got[0].as_ref().unwrap();
    let want = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(250);
    assert_eq!((first.timestamp, first.hook, first.prefix.as_str()), (Some(want), 2, ""));
    assert_eq!(got[1], Err(ParseError::Missing("NFULA_PACKET_HDR")));
    // fuzz: nflog — seconds and microseconds that overflow a Duration panicked.
    assert_eq!(got[2].as_ref().map(|p| p.timestamp), Ok(None));
}

fn v4(proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0];
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend_from_slice(l4);
    p
}

#[test]
fn ports_icmp_and_fragments() {
    let sctp = Tuple::parse(&v4(132, 0, &[0x1f, 0x90, 0, 80])).unwrap();
    assert_eq!((sctp.sport, sctp.dport, sctp.proto_name().as_str()), (Some(8080), Some(80), "sctp"));
    let icmp = Tuple::parse(&v4(1, 0, &[8, 0])).unwrap();
    assert_eq!((icmp.sport, icmp.dport), (Some(8), Some(0)));
    // A later fragment holds data, not ports.
    let later = Tuple::parse(&v4(6, 0x2001, &[0x1f, 0x90, 0, 80])).unwrap();
    assert_eq!((later.sport, later.dport), (None, None));
    let cut = Tuple::parse(&v4(6, 0, &[0x1f])).unwrap();
    assert_eq!((cut.sport, cut.dport), (None, None));
    assert_eq!(Tuple::parse(&v4(6, 0, &[])[..12]), Err(TupleError::Short(12)));
    assert_eq!(Tuple::parse(&[0x25, 0, 0]), Err(TupleError::NotIp(2)));
    assert_eq!(Tuple::parse(&[]), Err(TupleError::Short(0)));
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
    p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    // hop-by-hop (8 bytes) → fragment (offset 0) → UDP
    p.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 9]);
    p.extend_from_slice(&[0, 53, 0x30, 0x39]);
    let t = Tuple::parse(&p).unwrap();
    assert_eq!((t.src, t.proto, t.sport, t.dport), (ip("fd00::1"), 17, Some(53), Some(12345)));
}

#[test]
fn bind_request_asks_for_packets() {
    let bytes = listen::bind_request(300, 10, 50);
    let msgs: Vec<_> = Messages(&bytes).map(Result::unwrap).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].kind, (SUBSYS_ULOG << 8) | 1);
    // res_id is the group, big-endian.
    assert_eq!(&msgs[0].payload[2..4], &300u16.to_be_bytes());
    assert_eq!(msgs[0].attrs().get(1).unwrap().data, &[1]);
    let mode = msgs[1].attrs().get(2).unwrap();
    assert_eq!(mode.data, &[0, 0, 0, 160, 2, 0]);
}
