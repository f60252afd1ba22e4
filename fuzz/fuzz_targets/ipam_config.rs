//! host-local's configuration: the `ipam` object, the `ipRanges` capability, requested
//! addresses (`CNI_ARGS` IP=, `args`, `runtimeConfig.ips`) and the `resolvConf` file.
//! Input: NUL-separated ipam JSON, ipRanges JSON, comma-separated requests, resolv.conf text.
//!
//! Beyond no panic: range sets of a valid config never overlap; the allocator (over memory)
//! hands out distinct addresses inside their sets, honours requests or fails as a whole.
#![no_main]

use std::collections::HashSet;

use ipam::{IpamConfig, MemoryStore, Store, allocate, parse_requested, parse_resolv_conf};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use twill_fuzz::{fields, text};

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 4);
    resolv(&text(f[3]));
    let Ok(ipam) = serde_json::from_slice::<Value>(f[0]) else { return };
    let ranges = serde_json::from_slice::<Value>(f[1]).ok();
    let Ok(conf) = IpamConfig::from_json("net", &ipam, ranges.as_ref()) else { return };
    for (i, a) in conf.range_sets.iter().enumerate() {
        assert!(conf.range_sets[i + 1..].iter().all(|b| !a.overlaps(b)), "range sets overlap");
        for r in a.ranges() {
            assert!(
                r.range_start() <= r.range_end() && r.contains(r.range_start()) && r.contains(r.range_end())
            );
        }
    }
    let requests: Vec<String> = text(f[2]).split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let requested = parse_requested(&requests).unwrap_or_default();
    let mut store = MemoryStore::new();
    let mut taken = HashSet::new();
    for (n, wanted) in [&requested[..], &[], &requested[..]].into_iter().enumerate() {
        let id = format!("ctr{n}");
        let Ok(allocs) = allocate(&mut store, &conf, &id, "eth0", wanted) else {
            assert_eq!(store.len(), taken.len(), "a failed ADD left reservations");
            continue;
        };
        assert_eq!(allocs.len(), conf.range_sets.len());
        for a in &allocs {
            let ip = a.address.addr();
            assert!(conf.range_sets[a.range_set].contains(ip), "{ip} outside its set");
            assert_ne!(ip, a.gateway, "handed out the gateway");
            assert!(taken.insert(ip), "{ip} handed out twice");
        }
        for ip in wanted {
            assert!(allocs.iter().any(|a| a.address.addr() == *ip), "request {ip} not honoured");
        }
        assert_eq!(store.list().expect("memory list").len(), taken.len());
    }
});

fn resolv(text: &str) {
    let conf = parse_resolv_conf(text);
    let words = conf.nameservers.iter().chain(&conf.search).chain(&conf.options).chain(&conf.domain);
    for w in words {
        assert!(!w.is_empty() && !w.contains(char::is_whitespace), "resolv.conf word {w:?}");
    }
}
