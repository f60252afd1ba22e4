//! Kernel tier (root): a ruleset applied over netlink is the ruleset its nft text describes.
//! Each table goes to one throw-away namespace through `Conn::apply` and, as text, to another
//! through `nft -f`; `nft -j list table` must then print the same thing for both.

mod common;

use testkit::{TestNs, require_privileges};
use twill_fw::nft::{
    Batch, Chain, ChainType, Conn, DataType, Family, Field, Hook, Match, Operand, Rule, Set, Table, Value,
    Verdict,
};

fn apply_netlink(ns: &TestNs, batch: &Batch) {
    let mut conn = Conn::in_netns(ns.ns()).unwrap_or_else(|e| panic!("open: {e}"));
    conn.apply(batch).unwrap_or_else(|e| panic!("apply in {}: {e}\n{}", ns.name(), batch.text()));
}

fn assert_same(table: &Table) {
    let (by_netlink, by_nft) = (TestNs::new("fwnl"), TestNs::new("fwtx"));
    let mut batch = Batch::new();
    batch.add_table(table);
    apply_netlink(&by_netlink, &batch);
    by_nft.nft(&table.text());
    let family = table.family.name();
    let got = by_netlink.nft_table(family, &table.name).expect("netlink table listed");
    if std::env::var_os("TWILL_SHOW").is_some() {
        eprintln!("{}", by_netlink.nft_text(family, &table.name));
    }
    let want = by_nft.nft_table(family, &table.name).expect("text table listed");
    assert!(
        got == want,
        "netlink and text differ\n--- netlink ---\n{}\n--- text ---\n{}",
        by_netlink.nft_text(family, &table.name),
        by_nft.nft_text(family, &table.name)
    );
}

#[test]
fn inet_table_over_netlink_equals_its_text() {
    require_privileges();
    assert_same(&common::inet_table("twt_inet"));
}

#[test]
fn bridge_table_over_netlink_equals_its_text() {
    require_privileges();
    assert_same(&common::bridge_table("twt_bridge"));
}

#[test]
fn netdev_and_arp_tables_over_netlink_equal_their_text() {
    require_privileges();
    assert_same(&common::netdev_table("twt_netdev", "lo"));
    assert_same(&common::arp_table("twt_arp"));
}

#[test]
fn neighbour_discovery_targets_are_matched_by_raw_payload() {
    require_privileges();
    // nft cannot read `@th,64,128` back against an ipv6_addr set, so this one is checked by
    // what nft lists: the raw payload expression and the set lookup are there.
    let ns = TestNs::new("fwnd");
    let mut t = Table::new(Family::Bridge, "twt_nd");
    t.sets.push(Set::new("ips6", &[DataType::Ifname, DataType::Ipv6Addr]));
    t.chains.push(Chain::hooked(
        "prerouting",
        ChainType::Filter,
        Hook::Prerouting,
        -300,
        vec![Rule::verdict(
            vec![
                Match::eq(Field::Icmpv6Type, Value::Icmpv6Type(136)),
                Match::Is {
                    field: Field::NdTarget,
                    negate: true,
                    operand: Operand::Prefix("fe80::/10".parse().unwrap()),
                },
                Match::not_in_set(&[Field::Iifname, Field::NdTarget], "ips6"),
            ],
            Verdict::Drop,
        )],
    ));
    let mut b = Batch::new();
    b.add_table(&t);
    apply_netlink(&ns, &b);
    let listed = ns.nft_text("bridge", "twt_nd");
    assert!(listed.contains("icmpv6 type nd-neighbor-advert @th,64,128"), "{listed}");
    assert!(listed.contains("iifname . @th,64,128 != @ips6 drop"), "{listed}");
}

#[test]
fn batch_text_means_the_same_as_the_batch() {
    require_privileges();
    // The statement form (what `explain` and error messages show) must also be valid nft.
    let (by_netlink, by_nft) = (TestNs::new("fwnl"), TestNs::new("fwtx"));
    let table = common::inet_table("twt_batch");
    let mut batch = Batch::new();
    batch.replace_table(&table);
    apply_netlink(&by_netlink, &batch);
    by_nft.nft(&batch.text());
    assert_eq!(by_netlink.nft_table("inet", "twt_batch"), by_nft.nft_table("inet", "twt_batch"));
}

#[test]
fn replacing_a_table_leaves_nothing_of_the_old_one() {
    require_privileges();
    let ns = TestNs::new("fwrp");
    let mut first = Batch::new();
    first.add_table(&common::inet_table("twt_rep"));
    apply_netlink(&ns, &first);
    let mut trimmed = common::inet_table("twt_rep");
    trimmed.sets.retain(|s| s.name == "masq4");
    trimmed.chains.retain(|c| c.name == "postrouting");
    trimmed.chains[0].rules.retain(|r| r.to_string().contains("@masq4"));
    let mut b = Batch::new();
    b.replace_table(&trimmed);
    apply_netlink(&ns, &b);
    let listed = ns.nft_text("inet", "twt_rep");
    assert!(!listed.contains("chain forward") && !listed.contains("local4"), "{listed}");
    assert!(listed.contains("ip saddr @masq4 masquerade"), "{listed}");
    // Deleting works whether or not the table is there.
    let mut del = Batch::new();
    del.delete_table(&trimmed.id());
    apply_netlink(&ns, &del);
    apply_netlink(&ns, &del);
    assert_eq!(ns.nft_table("inet", "twt_rep"), None);
}
