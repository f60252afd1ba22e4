//! What twilld's flow log reader gets from the kernel (fw::nflog): netlink datagrams of
//! NFULNL_MSG_PACKET messages, their attributes and the packet copies in them. Beyond no
//! panic: a parsed packet's payload is a copy of bytes of the datagram, and a tuple's ports
//! are there exactly when the protocol has ports and the header holds them.
#![no_main]

use fw::nflog::{Tuple, parse_datagram};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for packet in parse_datagram(data).into_iter().flatten() {
        assert!(packet.payload.len() <= data.len(), "payload longer than the datagram");
        let Ok(t) = Tuple::parse(&packet.payload) else { continue };
        assert_eq!(t.src.is_ipv4(), t.dst.is_ipv4(), "mixed families");
        if !matches!(t.proto, 1 | 6 | 17 | 33 | 58 | 132 | 136) {
            assert_eq!((t.sport, t.dport), (None, None), "ports for protocol {}", t.proto);
        }
        assert_eq!(t.sport.is_some(), t.dport.is_some(), "one port without the other");
    }
    // The 5-tuple parser alone, on raw packets.
    let _ = Tuple::parse(data);
});
