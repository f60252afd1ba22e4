//! The exchange logic against a scripted fake kernel: acks, errors with extended acks,
//! multi-part dumps, stale replies and the `NLM_F_DUMP_INTR` retry.

use std::collections::VecDeque;
use std::num::NonZeroI32;
use std::sync::{Arc, Mutex};

use netlink_packet_core::{DoneMessage, ErrorMessage, NLM_F_MULTIPART};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};

use super::*;

/// One scripted reply datagram: messages with their extra header flags. `seq_delta` lets a
/// message claim a different sequence number than the request's (a stale reply).
type Reply = Vec<(NetlinkPayload<RouteNetlinkMessage>, u16, i64)>;

#[derive(Default)]
struct Fake {
    /// For each request sent, the datagrams the "kernel" answers with.
    script: VecDeque<Vec<Reply>>,
    pending: VecDeque<Vec<u8>>,
    sent: Arc<Mutex<Vec<NetlinkMessage<RouteNetlinkMessage>>>>,
}

impl Transport for Fake {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        let req = NetlinkMessage::<RouteNetlinkMessage>::deserialize(buf).unwrap();
        let seq = req.header.sequence_number;
        self.sent.lock().unwrap().push(req);
        let replies = self.script.pop_front().expect("unexpected request");
        for datagram in replies {
            let mut bytes = Vec::new();
            for (payload, flags, seq_delta) in datagram {
                let mut h = NetlinkHeader::default();
                h.flags = flags;
                h.sequence_number = (i64::from(seq) + seq_delta) as u32;
                let mut m = NetlinkMessage::new(h, payload);
                m.finalize();
                let start = bytes.len();
                bytes.resize(start + m.buffer_len(), 0);
                m.serialize(&mut bytes[start..]);
            }
            self.pending.push_back(bytes);
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        *buf = self.pending.pop_front().expect("recv without a scripted reply");
        Ok(())
    }
}

fn link(name: &str) -> NetlinkPayload<RouteNetlinkMessage> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.into()));
    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m))
}

fn done() -> NetlinkPayload<RouteNetlinkMessage> {
    NetlinkPayload::Done(DoneMessage::default())
}

fn ack(code: i32, echoed: Vec<u8>) -> NetlinkPayload<RouteNetlinkMessage> {
    let mut e = ErrorMessage::default();
    e.code = NonZeroI32::new(code);
    e.header = echoed;
    NetlinkPayload::Error(e)
}

fn conn(script: Vec<Vec<Reply>>) -> (Conn, Arc<Mutex<Vec<NetlinkMessage<RouteNetlinkMessage>>>>) {
    let fake = Fake { script: script.into(), ..Fake::default() };
    let sent = fake.sent.clone();
    (Conn::new(Box::new(fake)), sent)
}

fn names(msgs: &[RouteNetlinkMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(crate::Link::from_msg(l).name),
            _ => None,
        })
        .collect()
}

fn get_links() -> RouteNetlinkMessage {
    RouteNetlinkMessage::GetLink(LinkMessage::default())
}

const MULTI: u16 = NLM_F_MULTIPART;
const INTR: u16 = NLM_F_MULTIPART | NLM_F_DUMP_INTR;

#[test]
fn dump_spanning_datagrams_is_collected_until_done() {
    let (mut c, sent) = conn(vec![vec![
        vec![(link("a"), MULTI, 0), (link("b"), MULTI, 0)],
        vec![(link("c"), MULTI, 0), (done(), MULTI, 0)],
    ]]);
    assert_eq!(names(&c.dump(get_links()).unwrap()), ["a", "b", "c"]);
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header.flags, NLM_F_REQUEST | NLM_F_DUMP);
}

#[test]
fn interrupted_dump_is_retried_and_only_the_clean_one_returned() {
    let (mut c, sent) = conn(vec![
        vec![vec![(link("torn"), INTR, 0), (done(), INTR, 0)]],
        vec![vec![(link("old"), MULTI, 0)], vec![(done(), INTR, 0)]],
        vec![vec![(link("a"), MULTI, 0), (link("b"), MULTI, 0), (done(), MULTI, 0)]],
    ]);
    assert_eq!(names(&c.dump(get_links()).unwrap()), ["a", "b"]);
    let sent = sent.lock().unwrap();
    assert_eq!(sent.len(), 3);
    let seqs: Vec<u32> = sent.iter().map(|m| m.header.sequence_number).collect();
    assert!(seqs.windows(2).all(|w| w[0] != w[1]), "every attempt gets its own seq");
}

#[test]
fn dump_interrupted_every_time_gives_up() {
    let torn = || vec![vec![(link("x"), INTR, 0), (done(), INTR, 0)]];
    let (mut c, sent) = conn((0..MAX_DUMP_ATTEMPTS).map(|_| torn()).collect());
    let err = c.dump(get_links()).unwrap_err();
    assert!(matches!(err, Failure::DumpInterrupted(n) if n == MAX_DUMP_ATTEMPTS));
    assert_eq!(err.errno(), Some(libc::EINTR));
    assert_eq!(sent.lock().unwrap().len() as u32, MAX_DUMP_ATTEMPTS);
}

#[test]
fn replies_to_other_sequence_numbers_are_skipped() {
    let (mut c, _) = conn(vec![vec![vec![
        (link("stale"), MULTI, -1),
        (ack(-libc::EEXIST, vec![0; 16]), 0, -1),
        (link("mine"), 0, 0),
        (ack(0, vec![0; 16]), 0, 0),
    ]]]);
    assert_eq!(names(&c.request(get_links(), 0).unwrap()), ["mine"]);
}

#[test]
fn request_sets_ack_and_caller_flags() {
    let (mut c, sent) = conn(vec![vec![vec![(ack(0, vec![0; 16]), 0, 0)]]]);
    c.request(get_links(), NLM_F_CREATE_EXCL).unwrap();
    let flags = sent.lock().unwrap()[0].header.flags;
    assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE_EXCL);
}

const NLM_F_CREATE_EXCL: u16 = netlink_packet_core::NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL;

/// An extended-ack TLV block: NLMSGERR_ATTR_MSG with `text`.
fn extack(text: &str) -> Vec<u8> {
    let value = [text.as_bytes(), &[0]].concat();
    let len = 4 + value.len();
    let mut tlv = Vec::new();
    tlv.extend_from_slice(&(len as u16).to_ne_bytes());
    tlv.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
    tlv.extend_from_slice(&value);
    tlv.resize((len + 3) & !3, 0);
    tlv
}

#[test]
fn kernel_error_carries_errno_and_extended_ack_text() {
    let capped = [vec![0u8; 16], extack("Unknown device type")].concat();
    let (mut c, _) =
        conn(vec![vec![vec![(ack(-libc::EOPNOTSUPP, capped), NLM_F_ACK_TLVS | NLM_F_CAPPED, 0)]]]);
    match c.request(get_links(), 0).unwrap_err() {
        Failure::Kernel { errno, detail } => {
            assert_eq!(errno, libc::EOPNOTSUPP);
            assert_eq!(detail.as_deref(), Some("Unknown device type"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn uncapped_error_skips_the_echoed_request_before_the_tlvs() {
    let mut echoed = vec![0u8; 20];
    echoed[..4].copy_from_slice(&20u32.to_ne_bytes());
    echoed.extend(extack("bad attribute"));
    assert_eq!(error_detail(NLM_F_ACK_TLVS, &echoed).as_deref(), Some("bad attribute"));
    assert_eq!(error_detail(0, &echoed), None);
}

#[test]
fn error_inside_a_dump_and_negative_done_fail_the_dump() {
    let mut failed_done = DoneMessage::default();
    failed_done.code = -libc::EMSGSIZE;
    let (mut c, _) = conn(vec![
        vec![vec![(link("a"), MULTI, 0), (ack(-libc::EINVAL, vec![0; 16]), 0, 0)]],
        vec![vec![(link("a"), MULTI, 0), (NetlinkPayload::Done(failed_done), MULTI, 0)]],
    ]);
    let e = c.dump(get_links()).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EINVAL));
    let e = c.dump(get_links()).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EMSGSIZE));
}

#[test]
fn truncated_datagram_is_a_decode_error() {
    assert!(matches!(parse_one(&[1, 0, 0]), Err(Failure::Decode(_))));
    let mut bytes = vec![0u8; 16];
    bytes[..4].copy_from_slice(&64u32.to_ne_bytes());
    assert!(matches!(parse_one(&bytes), Err(Failure::Decode(_))));
}
