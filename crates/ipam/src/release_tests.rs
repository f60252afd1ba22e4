use super::*;
use crate::allocate::allocate;
use crate::config::IpamConfig;
use crate::error::ErrorKind;
use crate::memory::MemoryStore;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn attach(id: &str, ifname: &str) -> Owner {
    Owner::Attachment { id: id.into(), ifname: ifname.into() }
}

fn legacy(id: &str) -> Owner {
    Owner::Legacy { id: id.into() }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn release_frees_every_address_of_the_attachment_only() {
    let ipam = json!({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "2001:db8::/64"}]]});
    let conf = IpamConfig::from_ipam_json("net", &ipam).unwrap();
    let mut store = MemoryStore::new();
    allocate(&mut store, &conf, "a", "eth0", &[]).unwrap();
    allocate(&mut store, &conf, "a", "net1", &[]).unwrap();
    let freed = release(&mut store, "a", "eth0").unwrap();
    assert_eq!(freed, [ip("10.1.0.2"), ip("2001:db8::2")]);
    assert_eq!(store.len(), 2);
    assert!(release(&mut store, "a", "eth0").unwrap().is_empty(), "DEL twice succeeds");
    assert_eq!(release(&mut store, " a ", "net1").unwrap().len(), 2);
    assert!(store.is_empty());
}

#[test]
fn legacy_records_are_freed_only_when_no_exact_match() {
    let mut store = MemoryStore::new();
    store.insert(ip("10.0.0.2"), legacy("a"));
    store.insert(ip("10.0.0.3"), attach("a", "eth0"));
    store.insert(ip("10.0.0.4"), legacy("b"));
    assert_eq!(release(&mut store, "a", "eth0").unwrap(), [ip("10.0.0.3")]);
    assert_eq!(release(&mut store, "a", "eth0").unwrap(), [ip("10.0.0.2")]);
    assert_eq!(release(&mut store, "b", "whatever").unwrap(), [ip("10.0.0.4")]);
    assert!(store.is_empty());
}

#[test]
fn check_without_addresses_needs_one_reservation() {
    let mut store = MemoryStore::new();
    store.insert(ip("10.0.0.2"), attach("a", "eth0"));
    store.insert(ip("10.0.0.3"), legacy("old"));
    check(&store, "a", "eth0", &[]).unwrap();
    check(&store, "old", "eth0", &[]).unwrap();
    let err = check(&store, "a", "eth1", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "failed to find address added by container a on eth1");
}

#[test]
fn check_with_addresses_checks_each() {
    let mut store = MemoryStore::new();
    store.insert(ip("10.0.0.2"), attach("a", "eth0"));
    store.insert(ip("2001:db8::2"), attach("a", "eth0"));
    store.insert(ip("10.0.0.3"), attach("b", "eth0"));
    check(&store, "a", "eth0", &[ip("10.0.0.2"), ip("2001:db8::2"), ip("::ffff:10.0.0.2")]).unwrap();
    let other = check(&store, "a", "eth0", &[ip("10.0.0.3")]).unwrap_err();
    assert_eq!(other.kind(), ErrorKind::Conflict);
    assert_eq!(
        other.to_string(),
        "10.0.0.3 is reserved for container b on eth0, not for container a on eth0"
    );
    let missing = check(&store, "a", "eth0", &[ip("10.0.0.2"), ip("10.0.0.9")]).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(missing.to_string(), "10.0.0.9 is not reserved for container a on eth0");
}

#[test]
fn gc_frees_what_is_not_valid() {
    let mut store = MemoryStore::new();
    store.insert(ip("10.0.0.2"), attach("a", "eth0"));
    store.insert(ip("10.0.0.3"), attach("a", "net1"));
    store.insert(ip("10.0.0.4"), attach("b", "eth0"));
    store.insert(ip("10.0.0.5"), legacy("a"));
    store.insert(ip("10.0.0.6"), legacy("c"));
    store.insert(ip("10.0.0.7"), Owner::Unreadable { reason: "empty".into() });
    store.set_last_reserved(0, ip("10.0.0.7")).unwrap();
    let freed = gc(&mut store, &pairs(&[("a", "eth0"), ("z", "eth0")])).unwrap();
    assert_eq!(freed, [ip("10.0.0.3"), ip("10.0.0.4"), ip("10.0.0.6"), ip("10.0.0.7")]);
    assert_eq!(store.owner(ip("10.0.0.2")), Some(&attach("a", "eth0")));
    assert_eq!(store.owner(ip("10.0.0.5")), Some(&legacy("a")));
    assert_eq!(store.len(), 2);
    assert_eq!(store.last_reserved(0).unwrap(), Some(ip("10.0.0.7")));
}

#[test]
fn gc_with_no_valid_attachments_frees_everything() {
    let mut store = MemoryStore::new();
    store.insert(ip("10.0.0.2"), attach("a", "eth0"));
    store.insert(ip("10.0.0.3"), legacy("a"));
    assert_eq!(gc(&mut store, &[]).unwrap().len(), 2);
    assert!(gc(&mut store, &[]).unwrap().is_empty());
}
