//! Golden bytes: what nft 1.0.6 sends for the same objects (captured with
//! `strace -e trace=sendmsg -xx nft -f`), attribute by attribute.

use super::reader::{Message, Messages};
use super::*;
use crate::nft::rule::{Field, Match, Rule};
use crate::nft::table::{Chain, KeyPart, Table};
use crate::nft::types::{DataType, Family, Value, Verdict};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// `table inet t { set p {...}; chain c { <two rules> } }` as twill builds it.
fn table() -> Table {
    let mut t = Table::new(Family::Inet, "t");
    t.sets.push(Set::new("p", &[DataType::Ipv4Addr, DataType::InetProto, DataType::InetService]).intervals());
    let nd = Match::OneOf {
        field: Field::Icmpv6Type,
        negate: false,
        values: vec![KeyPart::Exact(Value::Icmpv6Type(135)), KeyPart::Exact(Value::Icmpv6Type(136))],
    };
    let ports = Match::in_set(&[Field::IpSaddr, Field::L4Proto, Field::ThDport], "p");
    t.chains.push(Chain::new(
        "c",
        vec![Rule::verdict(vec![nd], Verdict::Accept), Rule::verdict(vec![ports], Verdict::Accept)],
    ));
    t
}

fn messages(bytes: &[u8]) -> Vec<Message<'_>> {
    Messages(bytes).map(Result::unwrap).collect()
}

fn attr(msg: &Message<'_>, kind: u16) -> Vec<u8> {
    msg.attrs().get(kind).unwrap_or_else(|| panic!("attribute {kind} missing")).data.to_vec()
}

#[test]
fn batch_is_framed_and_every_change_asks_for_an_ack() {
    let mut b = Batch::new();
    b.add_table(&table());
    let enc = encode_batch(&b, 100).unwrap();
    let msgs = messages(&enc.bytes);
    assert_eq!(msgs.first().unwrap().kind, NFNL_MSG_BATCH_BEGIN);
    assert_eq!(msgs.last().unwrap().kind, NFNL_MSG_BATCH_END);
    assert_eq!(&msgs[0].payload[..4], &[0, 0, 0, 10], "res_id is the nftables subsystem");
    let kinds: Vec<u16> = msgs[1..msgs.len() - 1].iter().map(|m| m.kind & 0xff).collect();
    assert_eq!(
        kinds,
        [
            NFT_MSG_NEWTABLE,
            NFT_MSG_NEWCHAIN,
            NFT_MSG_NEWSET,
            NFT_MSG_NEWSET,
            NFT_MSG_NEWSETELEM,
            NFT_MSG_NEWRULE,
            NFT_MSG_NEWRULE
        ]
    );
    assert!(msgs[1..msgs.len() - 1].iter().all(|m| m.flags & writer::NLM_F_ACK != 0));
    assert_eq!(enc.seqs.len(), 7);
    assert_eq!(enc.seqs[0], (102, 0));
}

#[test]
fn sets_match_nft() {
    let mut b = Batch::new();
    b.add_table(&table());
    let enc = encode_batch(&b, 0).unwrap();
    let msgs = messages(&enc.bytes);
    let set = &msgs[3];
    assert_eq!(attr(set, NFTA_SET_FLAGS), hex("00000084"));
    assert_eq!(attr(set, NFTA_SET_KEY_TYPE), hex("0000730d"));
    assert_eq!(attr(set, NFTA_SET_KEY_LEN), hex("0000000c"));
    assert_eq!(attr(set, NFTA_SET_ID), hex("00000001"));
    assert_eq!(
        attr(set, NFTA_SET_DESC),
        hex("280002800c00018008000100000000040c00018008000100000000010c0001800800010000000002")
    );
    assert_eq!(attr(set, NFTA_SET_USERDATA), hex("000400000000030800040d0000000100"));
    let anon = &msgs[4];
    assert_eq!(attr(anon, NFTA_SET_NAME), b"__set%d\0");
    assert_eq!(attr(anon, NFTA_SET_FLAGS), hex("00000003"));
    assert_eq!(attr(anon, NFTA_SET_KEY_TYPE), hex("0000001d"));
    assert_eq!(attr(anon, NFTA_SET_KEY_LEN), hex("00000001"));
    assert_eq!(attr(anon, NFTA_SET_ID), hex("00000002"));
    assert_eq!(attr(anon, NFTA_SET_DESC), hex("0800010000000002"));
    let elems = &msgs[5];
    assert_eq!(attr(elems, NFTA_SET_ELEM_LIST_SET_ID), hex("00000002"));
    // nft numbers list elements 1, 2, ...; the kernel ignores the type of list elements.
    let mut nft_elems = hex("100001800c0001800500010087000000100002800c0001800500010088000000");
    nft_elems[18] = 1;
    assert_eq!(attr(elems, NFTA_SET_ELEM_LIST_ELEMENTS), nft_elems);
}

#[test]
fn vmap_user_data_matches_nft() {
    let mut t = Table::new(Family::Inet, "t");
    t.sets.push(Set::map("f", &[DataType::Ipv4Addr], &[DataType::Verdict]));
    let mut b = Batch::new();
    b.add_table(&t);
    let enc = encode_batch(&b, 0).unwrap();
    let set = &messages(&enc.bytes)[2];
    assert_eq!(attr(set, NFTA_SET_FLAGS), hex("00000008"));
    assert_eq!(attr(set, NFTA_SET_DATA_TYPE), hex("ffffff00"));
    assert_eq!(attr(set, NFTA_SET_DATA_LEN), hex("00000000"));
    assert_eq!(attr(set, NFTA_SET_USERDATA), hex("000402000000010400000000060400000000"));
}

#[test]
fn rules_match_nft_expression_for_expression() {
    let mut b = Batch::new();
    b.add_table(&table());
    let enc = encode_batch(&b, 0).unwrap();
    let msgs = messages(&enc.bytes);
    let anon_rule = "24000180090001006d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380050001000a00000024000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c000380050001003a000000340001800c0001007061796c6f616400240002800800010000000001080002000000000208000300000000000800040000000001300001800b0001006c6f6f6b757000002000028008000200000000010c0001005f5f7365742564000800040000000002300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001";
    let set_rule = "24000180090001006d6574610000000014000280080002000000000f08000100000000012c00018008000100636d700020000280080001000000000108000200000000000c0003800500010002000000340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c080004000000000424000180090001006d657461000000001400028008000200000000100800010000000009400001800e000100627974656f726465720000002c00028008000100000000090800020000000009080003000000000108000400000000010800050000000002340001800c0001007061796c6f61640024000280080001000000000a0800020000000002080003000000000208000400000000022c0001800b0001006c6f6f6b757000001c000280080002000000000106000100700000000800040000000001300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001";
    assert_eq!(attr(&msgs[6], NFTA_RULE_EXPRESSIONS), hex(anon_rule));
    assert_eq!(attr(&msgs[7], NFTA_RULE_EXPRESSIONS), hex(set_rule));
}

#[test]
fn many_elements_are_split_across_messages() {
    let set = Set::new("big", &[DataType::Ipv6Addr]);
    let elems: Vec<Elem> = (0..5000u32)
        .map(|i| {
            let ip = std::net::Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i));
            Elem::new(vec![crate::nft::table::KeyPart::addr(ip.into())]).with_comment("some/owner/eth0")
        })
        .collect();
    let mut b = Batch::new();
    b.add_elems(&TableId::new(Family::Inet, "t"), &set, elems);
    let enc = encode_batch(&b, 0).unwrap();
    let msgs = messages(&enc.bytes);
    assert!(msgs.len() > 4, "{} messages", msgs.len());
    assert!(msgs.iter().all(|m| m.payload.len() < 64 * 1024));
    let total: usize = msgs
        .iter()
        .filter_map(|m| m.attrs().get(NFTA_SET_ELEM_LIST_ELEMENTS))
        .map(|l| l.nested().count())
        .sum();
    assert_eq!(total, 5000);
    assert!(enc.seqs.iter().all(|(_, op)| *op == 0));
}

#[test]
fn a_rule_on_an_undeclared_set_is_refused() {
    let mut b = Batch::new();
    let rule = Rule::verdict(vec![Match::in_set(&[Field::IpSaddr], "nope")], Verdict::Drop);
    b.push(Op::AddRule(TableId::new(Family::Inet, "t"), "c".into(), rule));
    assert!(encode_batch(&b, 0).unwrap_err().0.contains("nope"));
}
