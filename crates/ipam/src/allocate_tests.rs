use super::*;
use crate::error::ErrorKind;
use crate::memory::MemoryStore;
use crate::store::Owner;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn conf(sets: &[&[&str]]) -> IpamConfig {
    let ranges: Vec<Vec<_>> =
        sets.iter().map(|set| set.iter().map(|s| json!({"subnet": s})).collect()).collect();
    IpamConfig::from_ipam_json("net", &json!({ "ranges": ranges })).unwrap()
}

fn one(store: &mut MemoryStore, conf: &IpamConfig, id: &str) -> Result<String, Error> {
    let got = allocate(store, conf, id, "eth0", &[])?;
    Ok(got[0].address.addr().to_string())
}

fn taken(pairs: &[&str]) -> MemoryStore {
    let mut store = MemoryStore::new();
    for p in pairs {
        store.insert(ip(p), Owner::Legacy { id: "id".into() });
    }
    store
}

/// subnets, reserved addresses, last reserved, expected address.
type Case<'a> = (&'a [&'a str], &'a [&'a str], Option<&'a str>, &'a str);

#[test]
fn round_robin_table_from_the_reference() {
    let cases: &[Case] = &[
        (&["10.0.0.0/29"], &[], None, "10.0.0.2"),
        (&["2001:db8:1::0/64"], &[], None, "2001:db8:1::2"),
        (&["10.0.0.0/30"], &[], None, "10.0.0.2"),
        (&["10.0.0.0/29"], &["10.0.0.2"], None, "10.0.0.3"),
        (&["10.0.0.0/29"], &[], Some("10.0.0.5"), "10.0.0.6"),
        (&["10.0.0.0/29"], &["10.0.0.4", "10.0.0.5"], Some("10.0.0.3"), "10.0.0.6"),
        (&["10.0.0.0/29"], &["10.0.0.6"], Some("10.0.0.5"), "10.0.0.2"),
        (&["10.0.0.0/29"], &["10.0.0.2"], Some("10.0.0.128"), "10.0.0.3"),
        (&["10.0.0.0/29"], &["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"], Some("10.0.0.3"), "10.0.0.3"),
        (&["10.0.0.0/30", "10.0.1.0/30"], &[], None, "10.0.0.2"),
        (&["10.0.0.0/30", "10.0.1.0/30"], &[], Some("10.0.0.2"), "10.0.1.2"),
        (&["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"], &[], Some("10.0.2.2"), "10.0.0.2"),
    ];
    for (i, (subnets, reserved, last, want)) in cases.iter().enumerate() {
        let c = conf(&[subnets]);
        let mut store = taken(reserved);
        if let Some(last) = last {
            store.set_last_reserved(0, ip(last)).unwrap();
        }
        assert_eq!(one(&mut store, &c, "ID").unwrap(), *want, "case {i}");
        assert_eq!(store.last_reserved(0).unwrap(), Some(ip(want)), "case {i}");
    }
}

#[test]
fn never_hands_out_gateway_network_or_broadcast() {
    let c = conf(&[&["192.168.1.0/29"]]);
    let mut store = MemoryStore::new();
    for i in 2..7 {
        assert_eq!(one(&mut store, &c, &format!("ID{i}")).unwrap(), format!("192.168.1.{i}"));
    }
    let err = one(&mut store, &c, "ID8").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exhausted);
    assert_eq!(
        err.to_string(),
        "failed to allocate for range 0: no IP addresses available in range set: 192.168.1.1-192.168.1.6"
    );
}

#[test]
fn release_then_allocate_moves_on() {
    let c = conf(&[&["192.168.1.0/29"]]);
    let mut store = MemoryStore::new();
    assert_eq!(allocate(&mut store, &c, "ID", "eth0", &[]).unwrap()[0].address.to_string(), "192.168.1.2/29");
    crate::release(&mut store, "ID", "eth0").unwrap();
    assert_eq!(one(&mut store, &c, "ID").unwrap(), "192.168.1.3");
}

#[test]
fn requested_ip_rules() {
    let c = conf(&[&["192.168.1.0/29"]]);
    let mut store = MemoryStore::new();
    let got = allocate(&mut store, &c, "ID", "eth0", &[ip("192.168.1.5")]).unwrap();
    assert_eq!(got[0].address.to_string(), "192.168.1.5/29");
    assert_eq!(store.last_reserved(0).unwrap(), Some(ip("192.168.1.5")));
    let again = allocate(&mut store, &c, "ID", "eth0", &[ip("192.168.1.5")]).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Conflict);
    assert_eq!(
        again.to_string(),
        "failed to allocate for range 0: requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6"
    );
    // Like the reference, a requested address is granted even if the attachment holds one.
    allocate(&mut store, &c, "ID", "eth0", &[ip("192.168.1.6")]).unwrap();
    let gw = allocate(&mut store, &c, "ID2", "eth0", &[ip("192.168.1.1")]).unwrap_err();
    assert_eq!(
        gw.to_string(),
        "failed to allocate for range 0: requested ip 192.168.1.1 is subnet's gateway"
    );
    let outside = allocate(&mut store, &c, "ID2", "eth0", &[ip("192.168.1.7")]).unwrap_err();
    assert_eq!(outside.to_string(), "failed to allocate all requested IPs: 192.168.1.7");
    assert_eq!(store.len(), 2);
}

#[test]
fn dual_stack_in_range_set_order() {
    let c = conf(&[&["10.1.0.0/24"], &["2001:db8::/64"]]);
    let mut store = MemoryStore::new();
    let got = allocate(&mut store, &c, "ID", "eth0", &[ip("2001:db8::99")]).unwrap();
    let shown: Vec<String> =
        got.iter().map(|a| format!("{} {} {}", a.range_set, a.address, a.gateway)).collect();
    assert_eq!(shown, ["0 10.1.0.2/24 10.1.0.1", "1 2001:db8::99/64 2001:db8::1"]);
    assert_eq!(store.last_reserved(1).unwrap(), Some(ip("2001:db8::99")));
    let next = allocate(&mut store, &c, "ID2", "eth0", &[]).unwrap();
    assert_eq!(next[1].address.to_string(), "2001:db8::9a/64");
}

#[test]
fn gateway_of_the_range_the_address_is_in() {
    let ipam = json!({"ranges": [[
        {"subnet": "10.0.0.0/30", "gateway": "10.0.0.2"},
        {"subnet": "10.0.1.0/24", "rangeStart": "10.0.1.50", "rangeEnd": "10.0.1.51"}
    ]]});
    let c = IpamConfig::from_ipam_json("net", &ipam).unwrap();
    let mut store = MemoryStore::new();
    let firsts: Vec<String> = (0..3)
        .map(|i| {
            let a = &allocate(&mut store, &c, &format!("c{i}"), "eth0", &[]).unwrap()[0];
            format!("{} via {}", a.address, a.gateway)
        })
        .collect();
    assert_eq!(
        firsts,
        ["10.0.0.1/30 via 10.0.0.2", "10.0.1.50/24 via 10.0.1.1", "10.0.1.51/24 via 10.0.1.1"]
    );
    assert_eq!(one(&mut store, &c, "c4").unwrap_err().kind(), ErrorKind::Exhausted);
}

#[test]
fn duplicate_allocation_is_refused_per_range_set() {
    let c = conf(&[&["10.1.0.0/24"]]);
    let mut store = MemoryStore::new();
    one(&mut store, &c, "ID").unwrap();
    let err = one(&mut store, &c, "ID").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        err.to_string(),
        "failed to allocate for range 0: 10.1.0.2 has been allocated to ID, duplicate allocation is not allowed"
    );
    assert!(allocate(&mut store, &c, "ID", "net1", &[]).is_ok());
    let mut legacy = taken(&[]);
    legacy.insert(ip("10.1.0.77"), Owner::Legacy { id: "old".into() });
    assert_eq!(one(&mut legacy, &c, "old").unwrap_err().kind(), ErrorKind::Conflict);
}

#[test]
fn failure_in_a_later_set_undoes_only_this_call() {
    let c = conf(&[&["10.1.0.0/24"], &["10.2.0.0/30"]]);
    let mut store = taken(&["10.2.0.2"]);
    store.insert(ip("10.1.0.9"), Owner::Attachment { id: "ID".into(), ifname: "eth1".into() });
    let err = allocate(&mut store, &c, "ID", "eth0", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exhausted);
    assert!(err.to_string().starts_with("failed to allocate for range 1: "), "{err}");
    assert_eq!(store.len(), 2, "only the pre-existing records remain");
}

#[test]
fn unreadable_record_keeps_its_address_taken() {
    let c = conf(&[&["10.0.0.0/30"]]);
    let mut store = MemoryStore::new();
    store.insert(ip("10.0.0.2"), Owner::Unreadable { reason: "empty".into() });
    assert_eq!(one(&mut store, &c, "ID").unwrap_err().kind(), ErrorKind::Exhausted);
}

#[test]
fn attachment_is_validated_and_id_trimmed() {
    let c = conf(&[&["10.0.0.0/24"]]);
    let mut store = MemoryStore::new();
    for (id, ifname) in [("", "eth0"), ("  ", "eth0"), ("a", ""), ("a\r\nb", "eth0"), ("a", "eth\n0")] {
        let err = allocate(&mut store, &c, id, ifname, &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{id:?} {ifname:?}");
    }
    allocate(&mut store, &c, " padded ", "eth0", &[]).unwrap();
    let owner = Owner::Attachment { id: "padded".into(), ifname: "eth0".into() };
    assert_eq!(store.owner(ip("10.0.0.2")), Some(&owner));
}

/// A store whose round-robin cursor cannot be written for one range set.
struct BrokenCursor {
    inner: MemoryStore,
    broken_set: usize,
}

impl Store for BrokenCursor {
    fn reserve(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool, Error> {
        self.inner.reserve(ip, id, ifname)
    }
    fn release(&mut self, ip: IpAddr) -> Result<bool, Error> {
        self.inner.release(ip)
    }
    fn list(&self) -> Result<Vec<Reservation>, Error> {
        self.inner.list()
    }
    fn last_reserved(&self, range_set: usize) -> Result<Option<IpAddr>, Error> {
        self.inner.last_reserved(range_set)
    }
    fn set_last_reserved(&mut self, range_set: usize, ip: IpAddr) -> Result<(), Error> {
        if range_set == self.broken_set {
            return Err(Error::io("write", "/x/last_reserved_ip.1", std::io::Error::other("disk full")));
        }
        self.inner.set_last_reserved(range_set, ip)
    }
}

#[test]
fn store_failure_leaves_nothing_behind() {
    let c = conf(&[&["10.1.0.0/24"], &["2001:db8::/64"]]);
    let mut store = BrokenCursor { inner: MemoryStore::new(), broken_set: 1 };
    let err = allocate(&mut store, &c, "ID", "eth0", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(store.inner.is_empty());
}

#[test]
fn available_until_every_address_of_a_set_is_taken() {
    // 10.0.0.0/30 offers only 10.0.0.2 (.1 is the gateway, .3 the broadcast).
    let c = conf(&[&["10.0.0.0/30"], &["2001:db8::/126"]]);
    let mut store = MemoryStore::new();
    check_available(&store, &c).unwrap();
    allocate(&mut store, &c, "a", "eth0", &[]).unwrap();
    let err = check_available(&store, &c).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exhausted);
    assert!(err.to_string().starts_with("failed to allocate for range 0: "), "{err}");
    // It agrees with ADD, which fails the same way and leaves nothing behind.
    let add = allocate(&mut store, &c, "b", "eth0", &[]).unwrap_err();
    assert_eq!(add.to_string(), err.to_string());
    crate::release(&mut store, "a", "eth0").unwrap();
    check_available(&store, &c).unwrap();
}

#[test]
fn availability_looks_at_every_set_and_ignores_foreign_reservations() {
    let c = conf(&[&["10.0.0.0/30"], &["2001:db8::/126"]]);
    let mut store = taken(&["2001:db8::2", "2001:db8::3", "10.9.9.9"]);
    let err = check_available(&store, &c).unwrap_err();
    assert!(err.to_string().starts_with("failed to allocate for range 1: "), "{err}");
    store.release(ip("2001:db8::3")).unwrap();
    check_available(&store, &c).unwrap();
}
