//! host-local's files under `<dataDir>/<network>/` as another process (the reference binary,
//! an older twill, a crash, a person) may have left them: reservations named by address,
//! `last_reserved_ip.N` cursors, anything else. Input: NUL-separated ipam config (JSON),
//! requested addresses (comma-separated), then pairs of file name and content.
//!
//! ADD, CHECK, DEL and GC then run on the real disk store. Beyond no panic: an allocation
//! gives one address per range set, inside it, not reserved before and now recorded for the
//! attachment; a failed ADD leaves the reservations as they were; DEL frees what ADD took;
//! GC with no valid attachment frees every reservation; STATUS reports exhaustion exactly
//! when ADD fails for it.
#![no_main]

use std::net::IpAddr;

use ipam::{
    DiskStore, ErrorKind, IpamConfig, Owner, Reservation, Store, allocate, check, check_available, gc,
    parse_requested, release,
};
use libfuzzer_sys::fuzz_target;
use twill_fuzz::{all_fields, plain_name, scratch_dir, text};

const NETWORK: &str = "fuzznet";
const ID: &str = "fuzz-ctr";
const IFNAME: &str = "eth0";

fuzz_target!(|data: &[u8]| {
    let f = all_fields(data);
    let Ok(ipam) = serde_json::from_slice::<serde_json::Value>(f[0]) else { return };
    let Ok(mut conf) = IpamConfig::from_ipam_json(NETWORK, &ipam) else { return };
    let requested_text = text(f.get(1).copied().unwrap_or_default());
    let requested: Vec<String> =
        requested_text.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let Ok(requested) = parse_requested(&requested) else { return };
    conf.data_dir = scratch_dir("host-local");
    let net_dir = conf.data_dir.join(NETWORK);
    std::fs::create_dir_all(&net_dir).expect("create the network dir");
    for pair in f.get(2..).unwrap_or_default().chunks(2) {
        let name = text(pair[0]);
        if plain_name(&name) {
            let _ = std::fs::write(net_dir.join(&name), pair.get(1).copied().unwrap_or_default());
        }
    }
    let mut store = DiskStore::open(&conf.data_dir, NETWORK).expect("open the store");
    let before = store.list().expect("list");
    let available = check_available(&store, &conf);
    let outcome = allocate(&mut store, &conf, ID, IFNAME, &requested);
    if requested.is_empty() {
        // STATUS agrees with ADD: an exhausted set fails ADD (perhaps earlier, for another
        // reason), and ADD failing for exhaustion was foretold.
        let exhausted = outcome.as_ref().is_err_and(|e| e.kind() == ErrorKind::Exhausted);
        assert!(available.is_ok() || outcome.is_err(), "STATUS {available:?}, ADD {outcome:?}");
        assert!(!exhausted || available.is_err(), "STATUS {available:?}, ADD {outcome:?}");
    }
    match outcome {
        Ok(allocs) => {
            added(&mut store, &conf, &before, &allocs.iter().map(|a| a.address.addr()).collect::<Vec<_>>())
        }
        Err(_) => assert_eq!(store.list().expect("list"), before, "a failed ADD changed reservations"),
    }
    if gc(&mut store, &[]).is_ok() {
        assert_eq!(store.list().expect("list"), Vec::new(), "GC without valid attachments kept some");
    }
});

fn added(store: &mut DiskStore, conf: &IpamConfig, before: &[Reservation], ips: &[IpAddr]) {
    assert_eq!(ips.len(), conf.range_sets.len());
    for (ip, set) in ips.iter().zip(&conf.range_sets) {
        assert!(set.contains(*ip), "{ip} outside its range set {set}");
        assert!(before.iter().all(|r| r.ip != *ip), "{ip} was already reserved");
        let owner = store.list().expect("list").into_iter().find(|r| r.ip == *ip).map(|r| r.owner);
        assert_eq!(owner, Some(Owner::Attachment { id: ID.into(), ifname: IFNAME.into() }));
    }
    check(store, ID, IFNAME, ips).expect("CHECK after ADD");
    let freed = release(store, ID, IFNAME).expect("DEL after ADD");
    assert!(ips.iter().all(|ip| freed.contains(ip)), "DEL freed {freed:?}, ADD took {ips:?}");
    let left = store.list().expect("list");
    assert!(left.iter().all(|r| !ips.contains(&r.ip)), "DEL left some of {ips:?}");
}
