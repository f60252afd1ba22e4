//! Kernel tier (root): element changes, reading elements back by key and by set, errors,
//! atomicity, table fingerprints, and conntrack deletion, in throw-away namespaces.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{addr, net, range};
use testkit::{TestNs, require_privileges};
use twill_fw::ct::{UdpFlow, delete_udp_flows};
use twill_fw::nft::*;

fn conn(ns: &TestNs) -> Conn {
    Conn::in_netns(ns.ns()).unwrap_or_else(|e| panic!("open in {}: {e}", ns.name()))
}

fn with_table(ns: &TestNs, table: &Table) -> Conn {
    let mut c = conn(ns);
    let mut b = Batch::new();
    b.add_table(table);
    c.apply(&b).unwrap_or_else(|e| panic!("create {}: {e}", table.name));
    c
}

#[test]
fn elements_are_added_read_back_by_key_and_deleted() {
    require_privileges();
    let ns = TestNs::new("fwel");
    let table = common::inet_table("twt_el");
    let mut c = with_table(&ns, &table);
    let id = table.id();
    let port4 = table.set("port4").unwrap();
    let mapping = |port: u16, comment: &str| {
        Elem::new(vec![KeyPart::Exact(Value::Proto(17)), KeyPart::Exact(Value::Port(port))])
            .with_comment(comment)
            .mapped_to(ElemData::Values(vec![Value::Addr(common::ip("10.88.0.9")), Value::Port(53)]))
    };
    let mut add = Batch::new();
    add.create_elems(&id, port4, vec![mapping(5353, "n/c9/eth0")]);
    c.apply(&add).unwrap();
    let got = c.get_elems(&id, port4, &[mapping(5353, "").key_only(), mapping(1, "").key_only()]).unwrap();
    assert_eq!(got, [Some(mapping(5353, "n/c9/eth0")), None]);
    // create refuses an existing key; add leaves an identical element alone.
    let err = c.apply(&add).unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(
        err.to_string().starts_with("create element inet twt_el port4 { udp . 5353 }: file exists"),
        "{err}"
    );
    let mut again = Batch::new();
    again.add_elems(&id, port4, vec![mapping(5353, "n/c9/eth0")]);
    c.apply(&again).unwrap();
    let mut del = Batch::new();
    del.del_elems(&id, port4, vec![mapping(5353, "n/c9/eth0")]);
    c.apply(&del).unwrap();
    assert_eq!(c.get_elems(&id, port4, &[mapping(5353, "")]).unwrap(), [None]);
    let err = c.apply(&del).unwrap_err();
    assert!(err.is_missing(), "{err}");
}

#[test]
fn a_failing_batch_changes_nothing() {
    require_privileges();
    let ns = TestNs::new("fwat");
    let table = common::inet_table("twt_at");
    let mut c = with_table(&ns, &table);
    let masq4 = table.set("masq4").unwrap();
    let mut b = Batch::new();
    b.add_elems(&table.id(), masq4, vec![Elem::new(vec![addr("10.1.0.7")])]);
    b.del_elems(&table.id(), masq4, vec![Elem::new(vec![addr("10.1.0.99")])]);
    let err = c.apply(&b).unwrap_err();
    assert!(err.to_string().contains("delete element inet twt_at masq4 { 10.1.0.99 }"), "{err}");
    assert_eq!(c.get_elems(&table.id(), masq4, &[Elem::new(vec![addr("10.1.0.7")])]).unwrap(), [None]);
    // A missing table is "missing" too, which is how plugins know to create it.
    let gone = TableId::new(Family::Inet, "nope");
    let mut b = Batch::new();
    b.add_elems(&gone, masq4, vec![Elem::new(vec![addr("10.1.0.7")])]);
    assert!(c.apply(&b).unwrap_err().is_missing());
    assert_eq!(c.get_elems(&gone, masq4, &[Elem::new(vec![addr("10.1.0.7")])]).unwrap(), [None]);
    assert!(!c.has_table(&gone).unwrap() && c.has_table(&table.id()).unwrap());
    assert!(c.has_set(&table.id(), "local4").unwrap() && !c.has_set(&table.id(), "x").unwrap());
}

#[test]
fn interval_elements_round_trip() {
    require_privileges();
    let ns = TestNs::new("fwiv");
    let table = common::inet_table("twt_iv");
    let mut c = with_table(&ns, &table);
    let id = table.id();
    for set in ["iv4", "local4", "ports4", "all6", "vm4", "pairs"] {
        let set = table.set(set).unwrap();
        let mut got = c.elems(&id, set).unwrap();
        let mut want = set.elems.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "set {}", set.name);
    }
    // The kernel's declarations read back as the table's (what GC walks).
    let declared: Vec<Set> = c.sets(&id).unwrap();
    assert_eq!(declared, table.sets.iter().map(Set::decl).collect::<Vec<_>>());
    // Growing and shrinking an interval set by elements.
    let iv4 = table.set("iv4").unwrap();
    let mut b = Batch::new();
    b.del_elems(
        &id,
        iv4,
        vec![Elem::new(vec![net("10.0.0.0/8")]), Elem::new(vec![range("200.0.0.0", "255.255.255.255")])],
    );
    b.add_elems(&id, iv4, vec![Elem::new(vec![range("10.0.0.0", "10.0.0.255")]).with_comment("smaller")]);
    c.apply(&b).unwrap();
    let listed = ns.nft_text("inet", "twt_iv");
    assert!(listed.contains("10.0.0.0/24 comment \"smaller\", 11.0.0.1 comment \"one\""), "{listed}");
    assert!(!listed.contains("200.0.0.0"), "{listed}");
    let got = c.get_elems(&id, iv4, &[Elem::new(vec![net("10.0.0.0/24")])]).unwrap();
    assert_eq!(got[0].as_ref().and_then(|e| e.comment.as_deref()), Some("smaller"));
}

#[test]
fn fingerprints_follow_content_not_counters() {
    require_privileges();
    let ns = TestNs::new("fwfp");
    let mut table = Table::new(Family::Inet, "twt_fp");
    table.sets.push(Set::new("s", &[DataType::Ipv4Addr]));
    let counted = Rule::new(vec![], vec![Stmt::Counter]);
    table.chains.push(Chain::hooked("out", ChainType::Filter, Hook::Output, 0, vec![counted]));
    let mut c = with_table(&ns, &table);
    let before = c.fingerprint(&table.id()).unwrap().expect("table exists");
    ns.ns()
        .run(|| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.send_to(b"x", "127.0.0.1:9").unwrap();
        })
        .unwrap();
    let listed = ns.nft_text("inet", "twt_fp");
    assert!(listed.contains("counter packets") && !listed.contains("counter packets 0"), "{listed}");
    assert_eq!(c.fingerprint(&table.id()).unwrap(), Some(before));
    let mut b = Batch::new();
    b.add_elems(&table.id(), &table.sets[0], vec![Elem::new(vec![addr("10.0.0.1")])]);
    c.apply(&b).unwrap();
    assert_ne!(c.fingerprint(&table.id()).unwrap(), Some(before));
    assert_eq!(c.fingerprint(&TableId::new(Family::Inet, "nope")).unwrap(), None);
}

fn udp_entries(ns: &TestNs, port: u16) -> usize {
    let out = ns.exec(&["conntrack", "-L", "-p", "udp", "--orig-port-dst", &port.to_string()]);
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("udp")).count()
}

#[test]
fn conntrack_entries_of_a_udp_port_are_deleted() {
    require_privileges();
    let ns = TestNs::new("fwct");
    // Conntrack runs in a namespace once some rule needs it.
    let mut t = Table::new(Family::Inet, "twt_ct");
    t.chains.push(Chain::hooked(
        "out",
        ChainType::Filter,
        Hook::Output,
        0,
        vec![Rule::verdict(vec![Match::AnyOf { field: Field::CtState, bits: 8 }], Verdict::Accept)],
    ));
    let mut c = with_table(&ns, &t);
    ns.ns()
        .run(|| {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            for port in [5353, 5354] {
                sock.send_to(b"x", ("127.0.0.1", port)).unwrap();
            }
        })
        .unwrap();
    assert!(testkit::wait_until(Duration::from_secs(10), || udp_entries(&ns, 5353) == 1));
    let other_pod = UdpFlow { port: 5353, v6: false, pod: Some(common::ip("127.0.0.2")) };
    assert_eq!(delete_udp_flows(&mut c, &[other_pod]).unwrap(), 0);
    let this_pod = UdpFlow { pod: Some(common::ip("127.0.0.1")), ..other_pod };
    assert_eq!(delete_udp_flows(&mut c, &[this_pod]).unwrap(), 1);
    assert_eq!(udp_entries(&ns, 5353), 0);
    assert_eq!(udp_entries(&ns, 5354), 1, "another port's entry stays");
    let any = UdpFlow { port: 5354, v6: false, pod: None };
    assert_eq!(delete_udp_flows(&mut c, &[any, any]).unwrap(), 1);
    assert_eq!(udp_entries(&ns, 5354), 0);
}
